"""Exports of a store for the tools people already have.

* ``hdf5``: one dataset per field, gzip-compressed, chunked along frames and written chunk by chunk (memory stays
  bounded however large the store), plus ``pose_matrot``: every joint's rotation matrix ``(F, J, 3, 3)``, as the AMASS
  tools' stage II wrote; the index under ``index/`` and the manifest as a JSON attribute. Needs h5py
  (``pip install 'amasskit[export]'``).
* ``pt``: one PyTorch tensor file per field (``<field>.pt``) and ``index.pt``, as the AMASS tools' stage III wrote.
* ``npz``: one npz per sequence (its fields, ``fps``, ``betas``, ``gender``, provenance as JSON).

An export is all or nothing: it is written beside its target (``.<name>.partial-*``) and renamed into place when
complete, so a killed export leaves no output that looks finished, and a failed one leaves nothing. An existing output
is replaced only with ``overwrite``, whole (never a mix of old and new files).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np

from .._util.atomic import atomic_open, atomic_path, staged_dir
from ..choices import ExportFormat, values
from ..errors import ConfigError, OutputExistsError
from ..rotations import to_rotmat
from ._format import Store

__all__ = ["EXPORT_FORMATS", "export_store", "rotation_matrices"]

EXPORT_FORMATS: Final[tuple[str, ...]] = values(ExportFormat)
_JOINT_ORDER = ("root_orient", "pose_body", "pose_jaw", "pose_eye", "pose_hand")  # the body model's joints
_CHUNK_FRAMES = 65536


def rotation_matrices(fields: dict[str, np.ndarray], representation: str) -> np.ndarray:
    """``(F, J, 3, 3)`` rotation matrices of every joint, in the body model's joint order, from a store's rotation
    fields (``root_orient``, ``pose_body``, [``pose_jaw``, ``pose_eye``,] ``pose_hand``) in ``representation``."""
    parts = []
    for name in _JOINT_ORDER:
        if name not in fields:
            continue
        value = np.asarray(fields[name], dtype=np.float64)
        if name in ("root_orient", "pose_jaw"):
            value = value[:, None]
        parts.append(to_rotmat(value, representation))
    return np.concatenate(parts, axis=1)


def export_store(
    store_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    format: str,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Export the store at ``store_path`` to ``out`` (a ``.h5`` file for ``hdf5``; a folder for ``pt`` and ``npz``).

    Args:
        overwrite: replace an existing ``out`` (whole, once the new export is complete).

    Raises:
        ConfigError: an unknown format.
        OutputExistsError: ``out`` exists and ``overwrite`` is false, or it is a folder where a file goes (or the
            reverse).
        ImportError: h5py missing for ``hdf5``.
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}", key="format")
    store = Store(store_path)
    target = Path(out)
    is_file = format == "hdf5"
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise OutputExistsError(f"{target} already exists; pass overwrite (--overwrite) to replace it")
        if target.is_symlink() or target.is_dir() == is_file:
            kind = "a file" if is_file else "a folder"
            raise OutputExistsError(f"{target} is not {kind}, which a {format} export writes; not replaced")
    if is_file:
        with atomic_path(target) as staging:
            _export_hdf5(store, staging, progress)
    else:
        with staged_dir(target, unique=True) as staging:
            if format == "pt":
                _export_pt(store, staging)
            else:
                _export_npz(store, staging, progress)
    return target


def _index(store: Store) -> dict[str, np.ndarray]:
    return {"offset": store.offset, "length": store.length, "fps": store.fps, "betas": store.betas,
            "gender": store.gender}  # fmt: skip


def _export_hdf5(store: Store, target: Path, progress: Callable[[int, int], None] | None) -> None:
    try:
        import h5py
    except ImportError:
        raise ImportError("HDF5 export needs h5py: pip install 'amasskit[export]'") from None
    representation = str(store.manifest.get("rotation", "rotvec"))
    F = store.num_frames
    with h5py.File(target, "w") as h5:
        h5.attrs["manifest"] = json.dumps(store.manifest, sort_keys=True)
        h5.attrs["sequences"] = json.dumps(store.sequences, sort_keys=True)
        rot_names = [n for n in _JOINT_ORDER if n in store.fields]
        first = {n: np.asarray(store.fields[n][:1]) for n in rot_names}
        joints = rotation_matrices(first, representation).shape[1] if rot_names else 0
        datasets: dict[str, Any] = {}
        for name, array in store.fields.items():
            datasets[name] = h5.create_dataset(name, shape=array.shape, dtype=array.dtype, compression="gzip",
                                               compression_opts=4, chunks=(min(F, 4096), *array.shape[1:]) if F else None)  # fmt: skip
        if joints:
            datasets["pose_matrot"] = h5.create_dataset(
                "pose_matrot", shape=(F, joints, 3, 3), dtype=np.float32, compression="gzip", compression_opts=4,
                chunks=(min(F, 4096), joints, 3, 3) if F else None,
            )  # fmt: skip
        for start in range(0, F, _CHUNK_FRAMES):  # bounded memory: one block of frames at a time
            sl = slice(start, min(F, start + _CHUNK_FRAMES))
            block = {n: np.asarray(a[sl]) for n, a in store.fields.items()}
            for name, value in block.items():
                datasets[name][sl] = value
            if joints:
                datasets["pose_matrot"][sl] = rotation_matrices(block, representation).astype(np.float32)
            if progress is not None:
                progress(sl.stop, F)
        group = h5.create_group("index")
        for name, value in _index(store).items():
            group.create_dataset(name, data=value)


def _export_pt(store: Store, target: Path) -> None:
    import torch

    target.mkdir(parents=True, exist_ok=True)
    for name, array in {**store.fields, "index": None}.items():
        payload: Any = (
            {k: torch.from_numpy(np.array(v)) for k, v in _index(store).items()}
            if array is None
            else torch.from_numpy(np.array(array))
        )
        with atomic_open(target / f"{name}.pt") as fp:
            torch.save(payload, fp)
    with atomic_open(target / "manifest.json") as fp:
        fp.write((json.dumps(store.manifest, indent=1, sort_keys=True) + "\n").encode())


def _export_npz(store: Store, target: Path, progress: Callable[[int, int], None] | None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for i in range(len(store)):
        arrays: dict[str, Any] = {name: np.asarray(value) for name, value in store[i].items()}
        arrays.update(fps=np.array(store.fps[i]), betas=store.betas[i], gender=np.array(store.gender_of(i).value),
                      provenance=np.array(json.dumps(store.sequences[i], sort_keys=True)))  # fmt: skip
        with atomic_open(target / f"{i:07d}.npz", fsync=False) as fp:
            np.savez(fp, **arrays)
        if progress is not None:
            progress(i + 1, len(store))
