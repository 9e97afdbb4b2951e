"""HumanML3D's motions as text-to-motion code serves them, over a folder ``amasskit humanml3d`` (or the original
procedure) wrote: :class:`HumanML3D`.

The entries follow the text-to-motion loaders (T2M's ``Text2MotionDatasetV2``, which MDM, T2M-GPT, MoMask and others
reuse): every motion of a split whose feature frames number at least ``min_length`` and fewer than 200; with texts
(HumanML3D's ``texts/<id>.txt``, lines ``caption#tokens#from#to``), a caption whose ``from``/``to`` seconds are both 0
describes the whole motion, any other describes frames ``[int(from * 20), int(to * 20))`` as an entry of its own
(kept where it passes the same length rule), and a motion with no whole-motion caption has no whole entry. Entries are
ordered by length (then by id).

An item is a window as those loaders cut it: its length rounded down to a multiple of ``unit_length`` (one unit
shorter one time in three), a start drawn uniformly where it fits, normalised by a mean and standard deviation, padded
with zeros to ``max_length`` frames. Unlike those loaders (Python's global ``random``), every draw is a function of
``(seed, epoch, index)`` only, so items are the same in any worker, any order, any run: ``set_epoch`` gives the next
epoch's draws.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import torch

from .._util.paths import user_path
from ..errors import InvalidArgumentError
from ._augment import counter_uniform

__all__ = ["HumanML3D", "HumanML3DEntry"]

_FPS: Final = 20
_MAX_FRAMES: Final = 200  # the loaders' upper bound on a motion's feature frames (exclusive)


@dataclass(frozen=True)
class HumanML3DEntry:
    """One entry: motion ``name``'s feature frames ``[start, stop)`` and the captions (and their tokens) of them."""

    name: str
    start: int
    stop: int
    captions: tuple[str, ...]
    tokens: tuple[str, ...]

    @property
    def length(self) -> int:
        return self.stop - self.start


def _read_texts(path: Path) -> list[tuple[str, str, float, float]]:
    """``(caption, tokens, from, to)`` of each line of a HumanML3D text file (NaN tags read as 0)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split("#")
        if len(parts) < 4:
            continue
        f_tag, to_tag = float(parts[2]), float(parts[3])
        out.append(
            (parts[0], parts[1], 0.0 if math.isnan(f_tag) else f_tag, 0.0 if math.isnan(to_tag) else to_tag)
        )
    return out


class HumanML3D(torch.utils.data.Dataset[dict[str, Any]]):
    """HumanML3D's features as the text-to-motion loaders serve them (see the module).

    Args:
        root: the folder (``new_joint_vecs/``, ``Mean.npy``, ``Std.npy``, the split lists; ``texts/`` if present).
        split: a split list's name in ``root`` (``train``, ``val``, ``test``, ...) or a list of motion ids.
        normalization: ``computed`` (``root``'s ``Mean.npy`` / ``Std.npy``), ``published`` (the published
            HumanML3D's, shipped with amasskit), or ``(mean, std)`` arrays.
        texts: use ``root/texts`` (True), ignore it (False: every motion whole, no captions), or ``None``: use it
            where it exists.
        min_length, max_length, unit_length: the loaders' 40, 196 and 4.
        seed: of every draw (caption, length, start).

    Items: ``motion (max_length, 263)`` float32 (normalised, zero-padded), ``length`` int64, ``caption`` str,
    ``tokens`` str (the caption's ``word/POS`` tokens as its text file has them), ``name`` str, ``index`` int64.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | Sequence[str] = "train",
        *,
        normalization: Literal["computed", "published"] | tuple[np.ndarray, np.ndarray] = "computed",
        texts: bool | None = None,
        min_length: int = 40,
        max_length: int = 196,
        unit_length: int = 4,
        seed: int = 0,
    ) -> None:
        self.root = user_path(root)
        if not (self.root / "new_joint_vecs").is_dir():
            raise InvalidArgumentError(f"{self.root}: no new_joint_vecs/ (not a HumanML3D folder)")
        if not 0 < min_length <= max_length or unit_length < 1:
            raise InvalidArgumentError("need 0 < min_length <= max_length and unit_length >= 1")
        if isinstance(split, str):
            listed = self.root / f"{split}.txt"
            if not listed.is_file():
                raise InvalidArgumentError(f"{self.root}: no split list {listed.name}")
            ids = [line.strip() for line in listed.read_text().splitlines() if line.strip()]
        else:
            ids = list(split)
        self.mean, self.std = self._normalization(normalization)
        self.max_length, self.unit_length, self.seed, self.epoch = max_length, unit_length, seed, 0
        text_dir = self.root / "texts"
        use_texts = text_dir.is_dir() if texts is None else texts
        if use_texts and not text_dir.is_dir():
            raise InvalidArgumentError(f"{self.root}: no texts/ (HumanML3D's texts.zip, unpacked)")
        entries = []
        for name in ids:
            path = self.root / "new_joint_vecs" / f"{name}.npy"
            if not path.is_file():
                continue  # as the loaders: a motion not built is left out
            frames = int(np.load(path, mmap_mode="r").shape[0])
            if not min_length <= frames < _MAX_FRAMES:
                continue
            if not use_texts:
                entries.append(HumanML3DEntry(name, 0, frames, (), ()))
                continue
            text_file = text_dir / f"{name}.txt"
            if not text_file.is_file():
                continue
            whole: list[tuple[str, str]] = []
            for caption, tokens, f_tag, to_tag in _read_texts(text_file):
                if f_tag == 0.0 and to_tag == 0.0:
                    whole.append((caption, tokens))
                    continue
                start, stop = min(int(f_tag * _FPS), frames), min(int(to_tag * _FPS), frames)
                if min_length <= stop - start < _MAX_FRAMES:
                    entries.append(HumanML3DEntry(name, start, stop, (caption,), (tokens,)))
            if whole:
                captions, tokens_ = zip(*whole, strict=True)
                entries.append(HumanML3DEntry(name, 0, frames, captions, tokens_))
        self.entries = sorted(entries, key=lambda e: (e.length, e.name, e.start))

    def _normalization(self, normalization: Any) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(normalization, tuple):
            mean, std = (np.asarray(a, dtype=np.float32) for a in normalization)
        elif normalization == "computed":
            mean, std = (np.load(self.root / f"{n}.npy").astype(np.float32) for n in ("Mean", "Std"))
        elif normalization == "published":
            from ..humanml3d import published_mean_std

            mean, std = published_mean_std()
        else:
            raise InvalidArgumentError(
                f"normalization is 'computed', 'published' or (mean, std), got {normalization!r}"
            )
        return mean, std

    def set_epoch(self, epoch: int) -> None:
        """The draws of epoch ``epoch`` (each epoch's are a function of the seed, the epoch and the index)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.entries)

    def window(self, index: int) -> tuple[int, int, int]:
        """``(caption number, start, length)`` of item ``index`` this epoch, within its entry."""
        entry = self.entries[index]
        u = counter_uniform(self.seed, self.epoch, np.array([index]), stream=7, count=3)[0]
        caption = min(int(u[0] * len(entry.captions)), len(entry.captions) - 1) if entry.captions else -1
        units = entry.length // self.unit_length
        if self.unit_length < 10 and u[1] * 3 >= 2:  # one time in three, a unit shorter
            units -= 1
        length = min(units * self.unit_length if units > 0 else entry.length, self.max_length)
        start = min(int(u[2] * (entry.length - length + 1)), entry.length - length)
        return caption, start, length

    def __getitem__(self, index: int) -> dict[str, Any]:
        entry = self.entries[index]
        caption, start, length = self.window(index)
        data = np.load(self.root / "new_joint_vecs" / f"{entry.name}.npy", mmap_mode="r")
        clip = np.asarray(data[entry.start + start : entry.start + start + length], dtype=np.float32)
        motion = np.zeros((self.max_length, clip.shape[1]), dtype=np.float32)
        motion[:length] = (clip - self.mean) / self.std
        return {
            "motion": torch.from_numpy(motion),
            "length": torch.tensor(length, dtype=torch.int64),
            "caption": entry.captions[caption] if caption >= 0 else "",
            "tokens": entry.tokens[caption] if caption >= 0 else "",
            "name": entry.name,
            "index": torch.tensor(index, dtype=torch.int64),
        }

    def inverse(self, motion: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Undo the normalisation: ``motion * std + mean``."""
        if isinstance(motion, torch.Tensor):
            return motion * torch.as_tensor(self.std, device=motion.device) + torch.as_tensor(
                self.mean, device=motion.device
            )
        return motion * self.std + self.mean
