"""Write a :class:`~amasskit.sequence.Sequence` as an npz file in its release's own layout, atomically.

SMPL+H sequences are written as the ``*_poses.npz`` release writes them (``poses`` 156, ``mocap_framerate``,
``dmpls``); SMPL-X sequences as ``*_stageii.npz`` (``poses`` 165 and the split keys, ``mocap_frame_rate``,
``surface_model_type``). Every other AMASS tool can read the result. A small JSON string under
:data:`~amasskit.io.META_KEY` records the provenance and the amasskit format version, so that reading the file back at
the same dtype gives an equal sequence.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._util.atomic import atomic_open
from ..sequence import ModelType, Sequence
from ._reader import META_KEY

__all__ = ["FORMAT_VERSION", "sequence_arrays", "write"]

FORMAT_VERSION = 1


def sequence_arrays(
    seq: Sequence, *, gender_as_bytes: bool = False, meta: Mapping[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """The arrays a release file of ``seq`` holds, by key, in ``seq``'s dtype.

    Args:
        seq: the sequence.
        gender_as_bytes: store gender as bytes (``b'female'``), as some real files do, instead of str.
        meta: extra entries for the metadata JSON (provenance and format version are always recorded).
    """
    gender = np.array(seq.gender.value.encode("ascii") if gender_as_bytes else seq.gender.value)
    fps = np.array(seq.fps, dtype=np.float64)
    record: dict[str, Any] = {"format": "amasskit.sequence", "version": FORMAT_VERSION}
    record["provenance"] = {
        k: v for k, v in seq.provenance.to_dict().items() if k != "source" and v is not None
    }
    record.update(meta or {})
    arrays: dict[str, np.ndarray] = {}
    poses = seq.to_flat()
    if seq.model is ModelType.SMPLH:
        arrays.update(poses=poses, trans=seq.trans, betas=seq.betas, gender=gender, mocap_framerate=fps)
        if seq.dmpls is not None:
            arrays["dmpls"] = seq.dmpls
    else:
        assert seq.pose_jaw is not None and seq.pose_eye is not None  # guaranteed by Sequence for SMPL-X
        T = seq.num_frames
        arrays.update(
            gender=gender,
            surface_model_type=np.array("smplx"),
            mocap_frame_rate=fps,
            mocap_time_length=np.array(seq.duration, dtype=np.float64),
            trans=seq.trans,
            poses=poses,
            betas=seq.betas,
            num_betas=np.array(seq.num_betas, dtype=np.int64),
            root_orient=seq.root_orient,
            pose_body=seq.pose_body.reshape(T, -1),
            pose_hand=seq.pose_hand.reshape(T, -1),
            pose_jaw=seq.pose_jaw,
            pose_eye=seq.pose_eye.reshape(T, -1),
        )
        if seq.dmpls is not None:
            arrays["dmpls"] = seq.dmpls
    if seq.markers is not None:
        pos_key, label_key, vid_key = (
            ("marker_data", "marker_labels", "marker_vids")
            if seq.model is ModelType.SMPLH
            else ("markers_latent", "latent_labels", "markers_latent_vids")
        )
        arrays[pos_key] = seq.markers.positions
        arrays[label_key] = np.array(seq.markers.labels, dtype=str)
        if seq.markers.vertex_ids is not None:
            arrays[vid_key] = seq.markers.vertex_ids
    arrays[META_KEY] = np.array(json.dumps(record, sort_keys=True))
    return arrays


def write(
    seq: Sequence,
    path: str | os.PathLike[str],
    *,
    gender_as_bytes: bool = False,
    meta: Mapping[str, Any] | None = None,
    fsync: bool = True,
) -> Path:
    """Write ``seq`` to ``path`` (uncompressed npz, as the releases are), atomically.

    Args:
        seq: the sequence.
        path: destination; parent folders are created. Name it ``*_poses.npz`` (SMPL+H) or ``*_stageii.npz``
            (SMPL-X) to match the releases.
        gender_as_bytes, meta: see :func:`sequence_arrays`.
        fsync: flush to disk before the rename (off for throwaway files such as synthetic trees).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    target = Path(path)
    arrays = sequence_arrays(seq, gender_as_bytes=gender_as_bytes, meta=meta)
    with atomic_open(target, fsync=fsync) as fp:
        np.savez(fp, **arrays)  # type: ignore[arg-type]
    return target
