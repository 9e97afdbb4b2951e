"""The published HumanML3D data shipped in the package (``data/SOURCES.md``): the index, the split lists, the
normalisation and the target skeleton. Read with :mod:`importlib.resources`; nothing is downloaded."""

from __future__ import annotations

import gzip
import io
import json
from functools import cache
from importlib import resources
from typing import Final

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["PUBLISHED_SPLITS", "published_mean_std", "published_split", "target_lengths"]

PUBLISHED_SPLITS: Final[tuple[str, ...]] = ("train", "val", "test", "train_val", "all")


def _read(name: str) -> bytes:
    return resources.files(__package__).joinpath("data").joinpath(name).read_bytes()


@cache
def target_lengths() -> np.ndarray:
    """``(22,)`` float64: the bone lengths (m) of the published target skeleton, SMPL's joint order (0 for the root)."""
    lengths = np.array(json.loads(_read("target_skeleton.json"))["lengths"], dtype=np.float64)
    lengths.flags.writeable = False
    return lengths


def published_split(name: str) -> list[str]:
    """The motion ids of a published split (``train``, ``val``, ``test``, ``train_val``, ``all``), in its order."""
    if name not in PUBLISHED_SPLITS:
        raise InvalidArgumentError(f"HumanML3D's splits are {', '.join(PUBLISHED_SPLITS)}; got {name!r}")
    text = gzip.decompress(_read(f"{name}.txt.gz")).decode("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def published_mean_std() -> tuple[np.ndarray, np.ndarray]:
    """The published ``Mean.npy`` and ``Std.npy``: ``(263,)`` float32 each."""
    mean, std = (np.load(io.BytesIO(_read(f"{n}.npy")), allow_pickle=False) for n in ("Mean", "Std"))
    return mean, std


def index_text() -> str:
    """The published ``index.csv``, as text."""
    return gzip.decompress(_read("index.csv.gz")).decode("utf-8")
