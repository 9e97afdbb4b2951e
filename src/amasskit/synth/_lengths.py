"""Sub-datasets of the AMASS SMPL+H release and the distribution of their sequence lengths.

The real per-file table (``npz_file_lens.json.gz``: ``[dataset_dir, md5, n_frames]`` for all 14,096 files) is licensed
metadata of the release and is never shipped; when it is found it is read at generation time. Without it, lengths come
from a log-normal fitted per sub-dataset to that table (the parameters below: file count, mean and standard deviation
of ``log(n_frames)``, and the observed range), which is all amasskit keeps.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["DATASETS", "DatasetSpec", "LengthTable", "find_lengths_table", "load_lengths_table"]

logger = logging.getLogger(__name__)

LENGTHS_TABLE_ENV: Final[str] = "AMASSKIT_LENGTHS_TABLE"
_TABLE_NAME = "npz_file_lens.json.gz"


@dataclass(frozen=True)
class DatasetSpec:
    """One sub-dataset as the synthetic generator models it.

    Attributes:
        name: folder name in the SMPL+H release.
        archive: release archive name (without ``.tar.bz2``).
        files: number of motion files in the release.
        log_mean, log_std: fitted log-normal of the sequence length in frames.
        min_frames, max_frames: observed range of lengths.
        fps: frame rates used by its files (the first is the most common).
        subject_format: how its subject folders are named (``{}`` is a 1-based number).
    """

    name: str
    archive: str
    files: int
    log_mean: float
    log_std: float
    min_frames: int
    max_frames: int
    fps: tuple[float, ...]
    subject_format: str

    def draw_lengths(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``(count,)`` int64 lengths from the fitted log-normal, clipped to the observed range."""
        draws = np.exp(rng.normal(self.log_mean, self.log_std, size=count))
        return np.clip(np.rint(draws), self.min_frames, self.max_frames).astype(np.int64)


def _spec(
    name: str, archive: str, fit: tuple[int, float, float, int, int], fps: tuple[float, ...], subj: str
) -> DatasetSpec:
    return DatasetSpec(name, archive, *fit, fps=fps, subject_format=subj)


DATASETS: Final[tuple[DatasetSpec, ...]] = (
    _spec("ACCAD", "ACCAD", (252, 6.385, 0.655, 203, 6361), (120.0,), "Male{}_bvh"),
    _spec("BMLhandball", "BMLhandball", (649, 6.985, 0.309, 480, 1979), (240.0,), "S{:02d}_Expert"),
    _spec("BMLmovi", "BMLmovi", (1801, 6.404, 0.462, 137, 2533), (120.0,), "Subject_{}_F_MoSh"),
    _spec("BioMotionLab_NTroje", "BMLrub", (3061, 6.619, 0.919, 8, 15959), (120.0,), "rub{:03d}"),
    _spec("CMU", "CMU", (2082, 6.880, 1.042, 10, 22948), (120.0, 60.0), "{:02d}"),
    _spec("DFaust_67", "DFaust67", (129, 5.660, 0.423, 142, 1251), (60.0,), "500{:02d}"),
    _spec("DanceDB", "DanceDB", (153, 8.881, 0.882, 75, 33689), (120.0,), "20{:02d}0101_Dancer"),
    _spec("EKUT", "EKUT", (349, 6.180, 0.508, 1, 1802), (100.0,), "{}"),
    _spec("Eyes_Japan_Dataset", "EyesJapanDataset", (750, 8.203, 0.274, 990, 8250), (250.0,), "subject{}"),
    _spec("HumanEva", "HumanEva", (28, 7.544, 0.634, 360, 3552), (120.0,), "S{}"),
    _spec("KIT", "KIT", (4232, 6.537, 0.618, 1, 26363), (100.0,), "{}"),
    _spec("MPI_HDM05", "MPIHDM05", (215, 8.264, 0.812, 99, 16137), (120.0,), "subj{}"),
    _spec("MPI_Limits", "MPILimits", (35, 8.202, 0.622, 897, 9020), (120.0,), "03{:03d}"),
    _spec("MPI_mosh", "MPImosh", (77, 7.110, 0.544, 362, 3287), (120.0,), "00{:03d}"),
    _spec("SFU", "SFU", (44, 7.477, 0.791, 297, 18709), (120.0,), "00{:02d}"),
    _spec("SSM_synced", "SSMsynced", (30, 5.670, 0.252, 160, 521), (59.9999885,), "resynced_2016{:04d}"),
    _spec("TCD_handMocap", "TCDhandMocap", (62, 6.627, 0.628, 226, 4422), (120.0,), "ExperimentDatabase{}"),
    _spec("TotalCapture", "TotalCapture", (37, 8.241, 0.326, 2019, 6776), (60.0,), "s{}"),
    _spec("Transitions_mocap", "Transitionsmocap", (110, 6.876, 0.201, 548, 1587), (120.0,), "mazen_c3d{}"),
)
"""The 19 sub-datasets of the SMPL+H release (14,096 files, 19,775,902 frames)."""


@dataclass(frozen=True)
class LengthTable:
    """Real per-file sequence lengths by sub-dataset, from ``npz_file_lens.json.gz``.

    Attributes:
        path: where it was read from.
        lengths: sub-dataset folder name -> ``(files,)`` int64 frame counts.
    """

    path: str
    lengths: dict[str, np.ndarray]


def load_lengths_table(path: str | os.PathLike[str]) -> LengthTable:
    """Read the gzip JSON list ``[[dataset_dir, md5, n_frames], ...]``.

    Raises:
        ValueError: the file is not such a list.
    """
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fp:
            rows = json.load(fp)
        by_dataset: dict[str, list[int]] = {}
        for dataset, _md5, frames in rows:
            by_dataset.setdefault(str(dataset), []).append(int(frames))
    except (OSError, ValueError, TypeError, EOFError) as exc:
        raise InvalidArgumentError(
            f"{path}: not a lengths table ([dataset_dir, md5, n_frames] rows in gzip JSON): {exc}"
        ) from exc
    return LengthTable(os.fspath(path), {k: np.asarray(v, dtype=np.int64) for k, v in by_dataset.items()})


def find_lengths_table(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Where the real lengths table is, if anywhere.

    Looked for, in order: ``explicit``; the environment variable ``AMASSKIT_LENGTHS_TABLE``; and, for a source checkout,
    ``shared/data/amass_sample/npz_file_lens.json.gz`` in the folder that holds the checkout.
    """
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(LENGTHS_TABLE_ENV)
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[3]  # <checkout>/src/amasskit/synth/_lengths.py
    candidate = checkout.parent / "shared" / "data" / "amass_sample" / _TABLE_NAME
    return candidate if candidate.is_file() else None
