"""Pose sets: the clean poses a distance field learns from, sampled from a catalog as VPoser and Pose-NDF sample AMASS.

A pose set is an amasskit store (:mod:`amasskit.store`) of kind ``pose-set``: one field ``quat (F, J, 4)``, float32
XYZW quaternions with ``w >= 0`` (21 body joints, or 51 with the hands), one ``frame (F,)`` field with each pose's
frame in its file (at the set's rate, counted from the file's start), and the store's index per source sequence
(``offset``, ``length``, ``sequences.json`` with source, dataset, subject, name): the provenance of every pose. Its
manifest records the config, the inputs' experiment id, the counts and any de-duplication.

:func:`build_pose_sets` runs :func:`amasskit.prepare.prepare` in frame-sampling mode (so a pose set inherits prepare's
selection, resampling, resumption, parallel and Dask runs) into ``OUT/.prepared``, then writes one pose set per split
to ``OUT/<split>`` with :func:`pose_set_from_store`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from ..._util.configfile import check_choice, config_values
from ..._util.paths import resolve_fields, user_path
from ...errors import ConfigError, InvalidArgumentError, OutputExistsError, StoreError
from ...rotations import convert, quat_canonical
from ...store import Store, StoreWriter, read_manifest, target_state

logger = logging.getLogger(__name__)

__all__ = [
    "JOINT_SETS",
    "POSE_SET_PRESETS",
    "PoseSet",
    "PoseSetConfig",
    "build_pose_sets",
    "pose_set_from_store",
    "write_pose_set",
]

KIND: Final[str] = "pose-set"
JOINT_SETS: Final[dict[str, tuple[str, ...]]] = {
    "body": ("pose_body",),
    "body+hands": ("pose_body", "pose_hand"),
}
POSE_SET_PRESETS: Final[dict[str, dict[str, float]]] = {
    # a seeded 30% of the frames of the middle 80% of each sequence, at the file's own rate
    "vposer": {"frame_fraction": 0.3, "trim_keep": 0.8},
    "posendf": {"frame_fraction": 0.3, "trim_keep": 0.8},
}


def find_pose_set(path: str | os.PathLike[str]) -> Path:
    """The pose set at ``path``, resolved; or, for the folder ``amasskit prior poses -o`` wrote (one pose set per
    split), its only pose set.

    Raises:
        StoreError: ``path`` is not a pose set and holds none, or holds several (naming them: give one).
    """
    folder = user_path(path)
    manifest = read_manifest(folder)
    if manifest is not None or not folder.is_dir():
        return folder  # a pose set, or something PoseSet names the problem of
    sets = sorted(p for p in folder.iterdir() if p.is_dir() and (read_manifest(p) or {}).get("kind") == KIND)
    if len(sets) == 1:
        logger.info("%s holds one pose set: %s", folder, sets[0].name)
        return sets[0]
    if sets:
        names = ", ".join(p.name for p in sets)
        raise StoreError(folder, f"holds {len(sets)} pose sets ({names}): give one, e.g. {sets[0]}")
    raise StoreError(folder, "not a pose set and holds none (make one with `amasskit prior poses -o FOLDER`)")


class PoseSet:
    """A pose set opened for reading (memory-mapped).

    Attributes:
        quat: ``(F, J, 4)`` float32. frame: ``(F,)`` int32. store: the underlying :class:`~amasskit.store.Store`.
        joints: ``"body"`` or ``"body+hands"``. experiment_id: the set's id (its config and inputs).

    Raises:
        StoreError: not a pose set (naming the path and what it is).
    """

    def __init__(self, path: str | Path) -> None:
        self.store = Store(path)
        manifest = self.store.manifest
        if manifest.get("kind") != KIND:
            raise StoreError(
                self.store.path,
                f"a store of kind {manifest.get('kind', 'motion')!r}, not a pose set "
                "(make one with `amasskit prior poses`)",
            )
        quat = self.store.fields.get("quat")
        if quat is None or quat.ndim != 3 or quat.shape[-1] != 4 or quat.dtype != np.float32:
            raise StoreError(self.store.path, "a pose set needs a float32 field quat (F, J, 4)")
        frame = self.store.fields.get("frame")
        if frame is None or frame.shape != quat.shape[:1]:
            raise StoreError(self.store.path, "a pose set needs a field frame (F,), one per pose")
        self.quat: np.ndarray = quat
        self.frame: np.ndarray = frame
        self.joints: str = str(manifest["pose_set"]["joints"])
        self.experiment_id: str = str(manifest.get("experiment_id", ""))

    def __len__(self) -> int:
        return int(self.quat.shape[0])

    @property
    def path(self) -> Path:
        return self.store.path

    def sequence_of(self, pose: np.ndarray | int) -> np.ndarray:
        """The sequence number of each pose id."""
        return np.searchsorted(self.store.offset, np.asarray(pose), side="right") - 1

    def provenance(self, pose: int) -> tuple[str, int]:
        """``(source file, frame)`` of a pose."""
        seq = int(self.sequence_of(pose))
        return str(self.store.sequences[seq]["source"]), int(self.frame[pose])


def _sequence_quats(store: Store, i: int, parts: tuple[str, ...], rotation: str) -> np.ndarray:
    a, n = int(store.offset[i]), int(store.length[i])
    arrays = []
    for name in parts:
        if name not in store.fields:
            raise InvalidArgumentError(f"{store.path}: no field {name!r} for these joints")
        arrays.append(np.asarray(store.fields[name][a : a + n], dtype=np.float64))
    values = np.concatenate(arrays, axis=1)
    quat = values if rotation == "quat" else convert(values, source=rotation, target="quat")
    quat = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
    return np.asarray(quat_canonical(quat), dtype=np.float32)


def _duplicates(quat: np.ndarray, threshold: float) -> np.ndarray:
    """Pose ids to drop: each pose with an earlier pose (smaller id) at geodesic distance under ``threshold``, found
    exactly (:meth:`~amasskit.prior.PoseIndex.search`, leave-one-out, more neighbours where the last found is still
    that close)."""
    from ._search import PoseIndex

    index = PoseIndex(quat, metric="geodesic")
    ids = np.arange(len(quat))
    drop = np.zeros(len(quat), dtype=bool)
    todo, k = ids, 4
    while len(todo) and len(quat) > 1:
        k = min(k, len(quat) - 1)
        # a radius search: only poses nearer than the threshold come back, and the bounds start from it
        dist, near = index.search(
            quat[todo], k, exclude=todo, hints=todo, max_distance=np.nextafter(threshold, 0.0)
        )
        close = (near >= 0) & (dist < threshold)
        drop[todo] |= (close & (near < todo[:, None])).any(1)
        more = (
            close[:, -1] & ~drop[todo]
        )  # every neighbour found is that close: an earlier one may lie further on
        if k == len(quat) - 1:
            break
        todo, k = todo[more], 4 * k
    return np.flatnonzero(drop)


def pose_set_from_store(
    store_path: str | Path,
    out: str | Path,
    *,
    joints: str = "body",
    dedup: float | None = None,
    overwrite: bool = False,
    manifest: Mapping[str, Any] | None = None,
) -> Path:
    """A pose set at ``out`` from a prepared store (any rotation representation): every stored frame is a pose.

    Args:
        joints: ``body`` (21) or ``body+hands`` (51).
        dedup: drop every pose with an earlier pose within this geodesic distance (radians, the sum over the joints
            of half the rotation angle between them); None keeps all.
        manifest: extra manifest entries.

    Raises:
        InvalidArgumentError: unknown joints, a negative threshold, a store without the fields.
        OutputExistsError: ``out`` holds something else, or a store and not ``overwrite``.
    """
    if joints not in JOINT_SETS:
        raise InvalidArgumentError(f"joints must be one of {', '.join(JOINT_SETS)}, got {joints!r}")
    if dedup is not None and not dedup >= 0:
        raise InvalidArgumentError(f"dedup must be a distance >= 0 (radians), got {dedup!r}")
    store = Store(store_path)
    rotation = str(store.manifest.get("config", {}).get("rotation", "rotvec"))
    parts = JOINT_SETS[joints]
    quats = [_sequence_quats(store, i, parts, rotation) for i in range(len(store))]
    frames = [
        np.asarray(store.fields["frame"][int(a) : int(a + n)], dtype=np.int32)
        if "frame" in store.fields
        else np.arange(int(n), dtype=np.int32)
        for a, n in zip(store.offset, store.length, strict=True)
    ]
    total = sum(len(q) for q in quats)
    keep = np.ones(total, dtype=bool)
    removed = 0
    if dedup is not None and total:
        dropped = _duplicates(np.concatenate(quats), float(dedup))
        keep[dropped] = False
        removed = len(dropped)
    record = {
        "kind": KIND,
        "pose_set": {
            "joints": joints,
            "joint_count": int(quats[0].shape[1]) if quats else 0,
            "quat": "xyzw, w >= 0, float32",
            "source_store": str(Path(store_path).resolve()),
            "dedup": None
            if dedup is None
            else {"metric": "geodesic", "threshold": float(dedup), "removed": removed},
        },
    }
    record |= {
        k: v for k, v in store.manifest.items() if k in ("experiment_id", "config", "split", "versions")
    }
    record |= dict(manifest or {})
    writer = StoreWriter(Path(out), overwrite=overwrite)
    try:
        start = 0
        for i, (q, f) in enumerate(zip(quats, frames, strict=True)):
            rows = keep[start : start + len(q)]
            start += len(q)
            if not rows.any():
                continue
            writer.add(
                {"quat": q[rows], "frame": f[rows]},
                fps=float(store.fps[i]),
                betas=store.betas[i],
                gender=store.gender_of(i),
                meta=store.sequences[i],
            )
        writer.close(record)
    except BaseException:
        writer.abort()
        raise
    logger.info("pose set %s: %d poses (%d removed as duplicates)", out, int(keep.sum()), removed)
    return Path(out)


def write_pose_set(
    quat: np.ndarray,
    out: str | Path,
    *,
    groups: np.ndarray | None = None,
    overwrite: bool = False,
    manifest: Mapping[str, Any] | None = None,
) -> Path:
    """A pose set at ``out`` from poses in memory (a family of your own, a synthetic manifold).

    Args:
        quat: ``(F, J, 4)`` XYZW quaternions (normalised and flipped to ``w >= 0`` here); ``J`` 21 or 51.
        groups: ``(F,)`` a sequence number per pose, non-decreasing (default: one sequence); frames count from 0
            within each.
        manifest: extra manifest entries (what the poses are).

    Raises:
        InvalidArgumentError: not ``(F, J, 4)`` with ``J`` 21 or 51, non-finite values, groups out of order.
        OutputExistsError: ``out`` holds something else, or a store and not ``overwrite``.
    """
    quat = np.asarray(quat, dtype=np.float64)
    joints = {21: "body", 51: "body+hands"}.get(quat.shape[1] if quat.ndim == 3 else -1)
    if (
        quat.ndim != 3
        or quat.shape[-1] != 4
        or joints is None
        or len(quat) == 0
        or not np.isfinite(quat).all()
    ):
        raise InvalidArgumentError(f"poses must be a finite (F, 21 or 51, 4) array, got {quat.shape}")
    groups = np.zeros(len(quat), dtype=np.int64) if groups is None else np.asarray(groups)
    if groups.shape != (len(quat),) or (np.diff(groups) < 0).any():
        raise InvalidArgumentError("groups must be (F,) non-decreasing sequence numbers")
    unit = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
    unit = np.asarray(quat_canonical(unit), dtype=np.float32)
    record = {
        "kind": KIND,
        "pose_set": {
            "joints": joints,
            "joint_count": int(quat.shape[1]),
            "quat": "xyzw, w >= 0, float32",
            "source_store": None,
            "dedup": None,
        },
    }
    record |= {"experiment_id": hashlib.sha256(unit.tobytes() + groups.tobytes()).hexdigest()[:16]}
    record |= dict(manifest or {})
    writer = StoreWriter(Path(out), overwrite=overwrite)
    try:
        for g in np.unique(groups):
            rows = np.flatnonzero(groups == g)
            writer.add(
                {"quat": unit[rows], "frame": np.arange(len(rows), dtype=np.int32)},
                fps=1.0,
                betas=np.zeros(16, dtype=np.float32),
                gender="neutral",
                meta={"source": f"group {int(g)}"},
            )
        writer.close(record)
    except BaseException:
        writer.abort()
        raise
    return Path(out)


#: the keys a pose set's selection shares with :class:`~amasskit.prepare.PrepareConfig`, passed on to it as they are
SELECTION_KEYS: Final[tuple[str, ...]] = (
    "catalog",
    "scheme",
    "splits",
    "datasets",
    "gender",
    "model",
    "min_duration",
    "fps",
    "seed",
    "workers",
    "strict",
    "dask",
)


@dataclass(frozen=True, kw_only=True)
class PoseSetConfig:
    """What ``amasskit prior poses`` does (every key is also a flag).

    Attributes:
        catalog, scheme, splits, datasets, gender, model, min_duration, fps, seed, workers, strict, dask: the
            selection, as :class:`~amasskit.prepare.PrepareConfig` (:data:`SELECTION_KEYS`, passed on to it).
        out: the folder of the pose sets (one per split).
        preset: ``posendf`` or ``vposer`` (both: 30% of the frames of the middle 80%); ``frame_fraction`` and
            ``trim_keep`` override it.
        joints: ``body`` or ``body+hands``.
        dedup: drop near-identical poses (geodesic distance under this many radians); None keeps every pose.
    """

    catalog: str
    out: str
    scheme: str | None = None
    splits: tuple[str, ...] | None = None
    datasets: tuple[str, ...] | None = None
    gender: str | None = None
    model: str | None = None
    min_duration: float = 0.0
    fps: float | None = None
    preset: str = "posendf"
    frame_fraction: float | None = None
    trim_keep: float | None = None
    joints: str = "body"
    dedup: float | None = None
    seed: int = 0
    workers: int | None = None
    strict: bool = False
    dask: str | None = None

    def __post_init__(self) -> None:
        resolve_fields(self, ("catalog", "out"))
        if isinstance(self.scheme, str) and self.scheme.lower() == "none":
            object.__setattr__(self, "scheme", None)  # `--scheme none`: one set `all`, as leaving it out
        check_choice("preset", self.preset, POSE_SET_PRESETS)
        check_choice("joints", self.joints, JOINT_SETS)
        if self.dedup is not None and (isinstance(self.dedup, bool) or not float(self.dedup) >= 0):
            raise ConfigError(f"dedup must be a distance >= 0 (radians), got {self.dedup!r}", key="dedup")
        self.prepare_config()  # every other key checked as prepare checks it

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PoseSetConfig:
        """Raises: ConfigError: an unknown or missing key, or a bad value (named)."""
        values = config_values(cls, data, required=("catalog", "out"), what="pose-set config")
        return cls(**values)

    def prepare_config(self) -> Any:
        from ...prepare import PrepareConfig

        preset = POSE_SET_PRESETS[self.preset]
        fraction = preset["frame_fraction"] if self.frame_fraction is None else self.frame_fraction
        keep = preset["trim_keep"] if self.trim_keep is None else self.trim_keep
        shared = {key: getattr(self, key) for key in SELECTION_KEYS}
        return PrepareConfig(
            out=str(Path(self.out) / ".prepared"),
            rotation="quat",
            dtype="float32",
            frame_fraction=fraction,
            trim_keep=keep,
            **shared,
        )

    def describe(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()
            if k not in ("workers", "dask", "out")
        }


def _same_pose_set(path: Path, experiment: str) -> bool:
    """``path`` holds a finished pose set of this experiment (a rerun keeps it, as ``prepare`` keeps a store)."""
    manifest = read_manifest(path) if path.is_dir() else None
    return bool(manifest and manifest.get("kind") == KIND and manifest.get("experiment_id") == experiment)


def build_pose_sets(
    config: PoseSetConfig, *, overwrite: bool = False, progress: Callable[[str, int, int], None] | None = None
) -> dict[str, Path]:
    """One pose set per split of the selection, at ``config.out/<split>`` (see the module docstring).

    Raises:
        As :func:`amasskit.prepare.prepare` (before any work starts: bad config, empty selection, ...).
    """
    from ...prepare import plan_prepare, prepare

    prepare_config = config.prepare_config()
    plan = plan_prepare(
        prepare_config, overwrite=True
    )  # the config and the selection checked before any work
    # the id is of the content: the selection's files by their hashes (the plan's id), not where the catalog lies
    settings = {k: v for k, v in config.describe().items() if k != "catalog"}
    digest = hashlib.sha256(json.dumps([settings, plan.experiment_id], sort_keys=True).encode())
    experiment = f"poses-{digest.hexdigest()[:12]}"
    out: dict[str, Path] = {}
    todo = []
    for split in sorted(plan.splits):
        target = Path(config.out) / split
        if _same_pose_set(target, experiment):
            logger.info("pose set %s: kept (made by this experiment already)", target)
            out[split] = target
            continue
        state = target_state(target)
        if state == "foreign":
            raise OutputExistsError(f"{target} holds something amasskit did not write: not replaced")
        if state == "store" and not overwrite:
            other = (read_manifest(target) or {}).get("experiment_id")
            raise OutputExistsError(
                f"{target} holds a pose set of another experiment ({other!r}, this one is "
                f"{experiment!r}); pass overwrite (--overwrite) to replace it, or choose another "
                "out"
            )
        todo.append(split)
    if not todo:
        return out
    report = prepare(prepare_config, overwrite=True, progress=progress)
    for split in todo:
        store = report.stores[split]
        out[split] = pose_set_from_store(
            store,
            Path(config.out) / split,
            joints=config.joints,
            dedup=config.dedup,
            overwrite=overwrite,
            manifest={
                "experiment_id": experiment,
                "split": split,
                "config": config.describe(),
                "prepared": report.experiment_id,
            },
        )
    out = dict(sorted(out.items()))
    if report.problems:
        logger.warning(
            "%d files could not be read (see the prepared stores' manifests)", len(report.problems)
        )
    return out
