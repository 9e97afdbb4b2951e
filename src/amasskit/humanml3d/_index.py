"""HumanML3D's ``index.csv``: which frames of which AMASS file each motion is, checked against a catalog before any
work.

Each row names the joints file the published first step writes (``./pose_data/<dataset>/<subject>/<name>_poses.npy``,
from ``<name>_poses.npz`` of the SMPL+H release) and a crop ``[start_frame, end_frame)`` counted in that file's frames
*after* the first step kept every ``int(fps / 20)``-th frame and the second step dropped a per-dataset start
(:data:`START_TRIMS`, in those frames). HumanAct12 rows (``./pose_data/humanact12/...``) are not AMASS: their joints
come from that dataset and are taken whole.

:func:`plan_rows` maps every row to its file in a catalog (either spelling of a sub-dataset, the SMPL+H release) and to
the source frames it takes, in one of two modes:

* ``exact`` (the published procedure, quirks included): frames ``(trim + start + k) * int(fps / 20)`` of the file, so
  a file at 250 fps gives 20.8 fps and one at 50 fps 25 fps; a crop past the end is cut short as numpy's slicing
  cuts it (reported).
* ``fixed``: the same stretch of time, ``[(trim + start), (trim + end)) * int(fps / 20) / fps`` seconds, sampled at
  exactly 20 fps from the file resampled by time (slerp), so every motion is 20 fps.

A row that cannot be honoured is kept with its reason (:data:`SKIP_REASONS`); nothing is dropped silently.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from ..catalog import CatalogRecord, canonical_dataset
from ..choices import HumanML3DMode, values
from ..errors import InvalidArgumentError
from ._data import index_text

__all__ = [
    "MODES",
    "SKIP_REASONS",
    "START_TRIMS",
    "TARGET_FPS",
    "IndexRow",
    "Mode",
    "PlannedRow",
    "crop_frames",
    "plan_rows",
    "read_index",
]

Mode = HumanML3DMode
MODES: Final[tuple[str, ...]] = values(HumanML3DMode)
TARGET_FPS: Final = 20
START_TRIMS: Final[dict[str, int]] = {
    "Eyes_Japan_Dataset": 3 * TARGET_FPS,
    "MPI_HDM05": 3 * TARGET_FPS,
    "TotalCapture": 1 * TARGET_FPS,
    "MPI_Limits": 1 * TARGET_FPS,
    "Transitions_mocap": int(0.5 * TARGET_FPS),
}
"""Frames (at the first step's rate) dropped from the start of every file of these sub-datasets before the crop;
the published procedure matches the names anywhere in the row's path."""
SKIP_REASONS: Final[dict[str, str]] = {
    "missing": "no such file in the catalog (SMPL+H release)",
    "smplx_only": "only in the SMPL-X release: the published data come from SMPL+H (--convert-smplx converts it first)",
    "humanact12": "a HumanAct12 motion, not AMASS: pass --humanact12 DIR with that dataset's joint files",
    "slow": "the file's frame rate is below 20 fps (the published stride int(fps / 20) is 0)",
    "empty": "no frames left after the start trim and the crop",
    "short": "fewer than 2 frames after the crop (features need 2)",
}
"""Why a row is not built, by code."""


@dataclass(frozen=True)
class IndexRow:
    """One row of ``index.csv``: motion ``motion_id`` is frames ``[start, end)`` of ``source`` (see the module)."""

    source: str
    start: int
    end: int
    motion_id: str

    @property
    def is_humanact12(self) -> bool:
        return "humanact12" in self.source

    @property
    def place(self) -> tuple[str, str, str]:
        """``(sub-dataset, subject, sequence)`` of an AMASS row: the canonical sub-dataset name, the subject folder
        and the sequence name (the file name without ``_poses.npy``)."""
        parts = [p for p in self.source.split("/") if p not in (".", "")]
        if len(parts) < 4 or parts[0] != "pose_data":
            raise InvalidArgumentError(f"index row {self.motion_id}: unexpected source path {self.source!r}")
        name = parts[-1]
        for suffix in ("_poses.npy", ".npy"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        return canonical_dataset(parts[1]), "/".join(parts[2:-1]), name

    @property
    def trim(self) -> int:
        """The start trim of this row's sub-dataset, in frames at the first step's rate."""
        return sum(frames for name, frames in START_TRIMS.items() if name in self.source)


def read_index(text: str | None = None) -> list[IndexRow]:
    """The rows of ``index.csv`` (default: the published one shipped with amasskit), in order."""
    reader = csv.DictReader(io.StringIO(index_text() if text is None else text))
    expected = {"source_path", "start_frame", "end_frame", "new_name"}
    if reader.fieldnames is None or not expected <= set(reader.fieldnames):
        raise InvalidArgumentError(f"an index needs the columns {', '.join(sorted(expected))}")
    rows = []
    for line, raw in enumerate(reader, start=2):
        try:
            motion_id = raw["new_name"].strip().removesuffix(".npy")
            rows.append(
                IndexRow(
                    raw["source_path"].strip(), int(raw["start_frame"]), int(raw["end_frame"]), motion_id
                )
            )
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"index line {line}: {exc}") from None
    return rows


@dataclass(frozen=True)
class PlannedRow:
    """A row with what building it takes: its catalog file (relative path) and frames, or why it is skipped.

    ``frames``: exact mode, the source file's frame indices; fixed mode, indices into the file resampled to 20 fps.
    ``path`` of a row skipped as ``smplx_only`` is its SMPL-X file's.
    ``truncated``: the crop ran past the file's end and was cut short (as the published procedure cuts it).
    ``converted``: planned on the file converted from the SMPL-X release (``path`` is the conversion's).
    """

    row: IndexRow
    path: str | None
    frames: np.ndarray | None
    skip: str | None = None
    truncated: bool = False
    converted: bool = False

    @property
    def count(self) -> int:
        return 0 if self.frames is None else len(self.frames)


def crop_frames(row: IndexRow, *, frames: int, fps: float, mode: Mode) -> tuple[np.ndarray, bool] | str:
    """The frames a row takes of a file of ``frames`` frames at ``fps`` (see the module), and whether its crop was cut
    short at the file's end; or the reason (a key of :data:`SKIP_REASONS`) it takes none."""
    stride = int(fps / TARGET_FPS)
    if stride < 1:
        return "slow"
    if mode == "exact":
        available = math.ceil(frames / stride) - row.trim  # frames after the first step and the trim
        stop = min(row.end, available)
        if stop - row.start <= 0:
            return "empty"
        taken = (row.trim + np.arange(row.start, stop)) * stride
        truncated = row.end > available
    else:
        last = math.floor((frames - 1) / fps * TARGET_FPS + 1e-9)  # the 20 fps frames within the file
        begin = round((row.trim + row.start) * stride / fps * TARGET_FPS)
        stop_at = round((row.trim + row.end) * stride / fps * TARGET_FPS)
        if min(stop_at, last + 1) - begin <= 0:
            return "empty"
        taken = np.arange(begin, min(stop_at, last + 1))
        truncated = stop_at > last + 1
    if len(taken) < 2:
        return "short"
    return taken, truncated


def plan_rows(
    rows: Iterable[IndexRow],
    records: Iterable[CatalogRecord],
    *,
    mode: Mode = "exact",
    humanact12: Mapping[str, int] | None = None,
) -> list[PlannedRow]:
    """Every row mapped to its catalogued SMPL+H file and the frames it takes, or to why it cannot be built.

    Args:
        records: the catalog's files (both releases: a row found only in SMPL-X is named as such).
        humanact12: where HumanAct12 joints are given, ``{motion file name: frames}``; else those rows are skipped.
    """
    if mode not in MODES:
        raise InvalidArgumentError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    smplh: dict[tuple[str, str, str], CatalogRecord] = {}
    smplx: dict[tuple[str, str, str], CatalogRecord] = {}
    for record in records:
        key = (canonical_dataset(record.dataset), record.subject or "", record.sequence)
        if record.model == "smplh":
            smplh.setdefault(key, record)
        else:
            smplx.setdefault(key, record)
    planned = []
    for row in rows:
        if row.is_humanact12:
            name = row.source.rsplit("/", 1)[-1]
            if humanact12 is None or name not in humanact12:
                planned.append(PlannedRow(row, None, None, "humanact12"))
            elif humanact12[name] < 2:
                planned.append(PlannedRow(row, name, None, "short"))
            else:
                planned.append(PlannedRow(row, name, np.arange(humanact12[name])))
            continue
        key = row.place
        found = smplh.get(key)
        if found is None:
            only_x = smplx.get(key)
            planned.append(
                PlannedRow(
                    row,
                    None if only_x is None else only_x.path,
                    None,
                    "missing" if only_x is None else "smplx_only",
                )
            )
            continue
        taken = crop_frames(row, frames=found.frames, fps=found.fps, mode=mode)
        if isinstance(taken, str):
            planned.append(PlannedRow(row, found.path, None, taken))
        else:
            planned.append(PlannedRow(row, found.path, taken[0], truncated=taken[1]))
    return planned
