"""One reader for every AMASS release: SMPL+H ``*_poses.npz`` and SMPL-X ``*_stageii.npz``.

:func:`read_header` learns frame count, frame rate, gender and model from a file's small arrays and ``.npy`` headers
alone; :func:`read` returns a validated :class:`~amasskit.sequence.Sequence`. Neither ever enables pickle; every
problem is a typed :mod:`amasskit.errors` exception naming the file.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from ..conventions import DEFAULT_DTYPE, resolve_dtype
from ..errors import (
    ArrayShapeError,
    EmptySequenceError,
    InvalidValueError,
    MissingKeyError,
    NonFiniteError,
    NotMotionFileError,
)
from ..layouts import LAYOUTS, PoseLayout, split_flat_poses
from ..sequence import Gender, Markers, ModelType, Provenance, Sequence
from ._npz import NpzArchive

__all__ = [
    "META_KEY",
    "FileKind",
    "SequenceHeader",
    "classify_path",
    "header_from_archive",
    "read",
    "read_header",
]

logger = logging.getLogger(__name__)

META_KEY = "amasskit_meta"
"""Key of the JSON string amasskit adds to files it writes (format version, provenance, synthetic label)."""

_FPS_KEYS = ("mocap_framerate", "mocap_frame_rate")  # SMPL+H release, SMPL-X release
_SPLIT_KEYS = {"root_orient": 3, "pose_body": 63, "pose_jaw": 3, "pose_eye": 6, "pose_hand": 90}
_MARKER_KEYS: tuple[tuple[str, str, str], ...] = (  # (positions, labels, vertex ids) as files name them
    ("marker_data", "marker_labels", "marker_vids"),
    ("markers", "labels", "vids"),
    ("markers_latent", "latent_labels", "markers_latent_vids"),
)
_GENDER_FILES = {f"{g.value}_stagei.npz" for g in Gender}


class FileKind(str, Enum):
    """What an ``.npz`` file in an AMASS tree is."""

    MOTION = "motion"
    """A motion sequence (``*_poses.npz``, ``*_stageii.npz``, or any npz with poses)."""
    SHAPE = "shape"
    """``shape.npz``: a subject's betas and gender (SMPL+H release)."""
    STAGEI = "stagei"
    """``*_stagei.npz`` / ``{gender}_stagei.npz``: a shape fit (SMPL-X release)."""

    def __str__(self) -> str:
        return self.value


def classify_path(path: str | os.PathLike[str]) -> FileKind:
    """The kind of an AMASS file judged by its name alone (no I/O): shape and stage-i files are not motion."""
    name = Path(path).name.lower()
    if name == "shape.npz":
        return FileKind.SHAPE
    if name.endswith("_stagei.npz") or name in _GENDER_FILES:
        return FileKind.STAGEI
    return FileKind.MOTION


@dataclass(frozen=True)
class SequenceHeader:
    """What a motion file holds, learnt without reading its pose data.

    Attributes:
        path: the file.
        model: body model of the release (``smplh`` for ``*_poses.npz``, ``smplx`` for ``*_stageii.npz``).
        gender: parsed gender (str and bytes both accepted).
        fps: frames per second, as stored (may be non-integer).
        num_frames: T.
        num_betas: length of ``betas``.
        has_dmpls: the file has DMPL coefficients.
        has_markers: the file has mocap marker arrays.
        provenance: dataset, subject and sequence name from the path.
        synthetic: the file was written by amasskit's synthetic generator.
    """

    path: str
    model: ModelType
    gender: Gender
    fps: float
    num_frames: int
    num_betas: int
    has_dmpls: bool
    has_markers: bool
    provenance: Provenance = field(default_factory=Provenance)
    synthetic: bool = False

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_frames / self.fps

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (enums as their values)."""
        return {
            "path": self.path,
            "model": self.model.value,
            "gender": self.gender.value,
            "fps": self.fps,
            "num_frames": self.num_frames,
            "duration": self.duration,
            "num_betas": self.num_betas,
            "has_dmpls": self.has_dmpls,
            "has_markers": self.has_markers,
            "provenance": self.provenance.to_dict(),
            "synthetic": self.synthetic,
        }


@dataclass(frozen=True)
class _Layout:
    """How one opened motion file stores its poses (decided once, used by both readers)."""

    model: ModelType
    pose_keys: tuple[str, ...]  # ("poses",) or the split keys
    num_frames: int
    meta: dict[str, Any]


def read_header(path: str | os.PathLike[str]) -> SequenceHeader:
    """Frame count, frame rate, gender and model of a motion file, without reading its pose arrays.

    Only ``gender``, the frame rate, ``surface_model_type`` and the small metadata string are read; every other
    array's shape comes from its ``.npy`` header.

    Raises:
        NotMotionFileError: a shape or stage-i file.
        MotionFileNotFoundError, CorruptFileError, MissingKeyError, ArrayShapeError, EmptySequenceError,
        InvalidValueError, NonFiniteError, PickledDataError: see :mod:`amasskit.errors`.
    """
    with NpzArchive(path) as npz:
        return header_from_archive(npz)


def header_from_archive(npz: NpzArchive) -> SequenceHeader:
    """:func:`read_header` on an already open archive (the catalog also fingerprints it while it is open)."""
    layout = _inspect(npz)
    return SequenceHeader(
        path=os.fspath(npz.path),
        model=layout.model,
        gender=_read_gender(npz),
        fps=_read_fps(npz),
        num_frames=layout.num_frames,
        num_betas=math.prod(_betas_shape(npz)),
        has_dmpls="dmpls" in npz,
        has_markers=any(pos in npz for pos, _, _ in _MARKER_KEYS),
        provenance=_provenance(npz.path, layout.meta),
        synthetic=bool(layout.meta.get("synthetic", False)),
    )


def read(
    path: str | os.PathLike[str],
    *,
    dtype: object = DEFAULT_DTYPE,
    markers: bool = False,
    check_finite: bool = True,
) -> Sequence:
    """Read one AMASS motion file of either release into a :class:`~amasskit.sequence.Sequence`.

    Args:
        path: a ``*_poses.npz`` (SMPL+H) or ``*_stageii.npz`` (SMPL-X) file, or any npz amasskit wrote.
        dtype: float32 (default) or float64; float64 keeps AMASS values bit-exact.
        markers: also keep the mocap marker arrays (ignored by default).
        check_finite: reject NaN or infinite values in poses, translation, betas and DMPLs (default on).

    Returns:
        The sequence, with provenance (dataset, subject, name) taken from the path.

    Raises:
        NotMotionFileError: a shape or stage-i file (batch jobs skip these).
        MotionFileNotFoundError, CorruptFileError, MissingKeyError, ArrayShapeError, EmptySequenceError,
        InvalidValueError, NonFiniteError, PickledDataError: see :mod:`amasskit.errors`.
    """
    target = resolve_dtype(dtype)
    with NpzArchive(path) as npz:
        layout = _inspect(npz)
        fps = _read_fps(npz)
        gender = _read_gender(npz)
        num_frames = layout.num_frames

        if layout.pose_keys == ("poses",):
            poses = _read_float(npz, "poses", check_finite)
            parts = split_flat_poses(poses, layout.model.layout)
        else:
            parts = {}
            for key in layout.pose_keys:
                flat = _read_float(npz, key, check_finite)
                parts.update(split_flat_poses(flat, _single_part_layout(key)))
        trans = _read_float(npz, "trans", check_finite)
        _expect_shape(npz, "trans", trans.shape, (num_frames, 3))
        betas = _read_float(npz, "betas", check_finite).reshape(-1)
        dmpls = None
        if "dmpls" in npz:
            dmpls = _read_float(npz, "dmpls", check_finite)
            if dmpls.ndim != 2 or dmpls.shape[0] != num_frames:
                raise ArrayShapeError(
                    npz.path, f"'dmpls' must have shape ({num_frames}, K), got {dmpls.shape}"
                )
        marker_set = _read_markers(npz, num_frames, target) if markers else None

        arrays = {name: np.ascontiguousarray(arr, dtype=target) for name, arr in parts.items()}
        return Sequence(
            **arrays,
            trans=np.ascontiguousarray(trans, dtype=target),
            betas=np.ascontiguousarray(betas, dtype=target),
            gender=gender,
            fps=fps,
            model=layout.model,
            dmpls=None if dmpls is None else np.ascontiguousarray(dmpls, dtype=target),
            provenance=_provenance(path, layout.meta),
            markers=marker_set,
        )


# ---------------------------------------------------------------------------------------------- helpers


def _inspect(npz: NpzArchive) -> _Layout:
    """Decide what the file is and how it stores poses; raise for files that are not motion."""
    kind = classify_path(npz.path)
    if kind is not FileKind.MOTION:
        raise NotMotionFileError(
            npz.path, f"is a {kind.value} file (body shape only), not a motion sequence", kind=kind.value
        )
    meta = _read_meta(npz)
    if "poses" in npz:
        pose_keys: tuple[str, ...] = ("poses",)
        info = npz.info("poses")
        if len(info.shape) != 2:
            raise ArrayShapeError(
                npz.path, f"'poses' must be 2-D (T, 156) or (T, 165), got shape {info.shape}"
            )
        width = info.shape[1]
    elif all(k in npz for k in _SPLIT_KEYS):
        pose_keys = tuple(_SPLIT_KEYS)
        info = npz.info("root_orient")
        width = LAYOUTS["smplx"].width
    else:
        if "betas" in npz and "trans" not in npz:
            raise NotMotionFileError(
                npz.path,
                "holds a body shape (betas, gender) but no poses: not a motion sequence",
                kind="shape",
            )
        raise MissingKeyError(
            npz.path,
            "has no 'poses' array (nor the split SMPL-X keys root_orient, pose_body, pose_jaw, pose_eye, "
            f"pose_hand); arrays present: {', '.join(npz.keys()) or 'none'}",
            key="poses",
        )

    if "surface_model_type" in npz:
        try:
            model = ModelType.parse(npz.read_scalar("surface_model_type"))
        except ValueError as exc:
            raise InvalidValueError(npz.path, f"'surface_model_type': {exc}") from None
        if model.layout not in LAYOUTS:
            raise InvalidValueError(
                npz.path,
                f"'surface_model_type' is {model.value!r}; AMASS motion files are 'smplh' or 'smplx'",
            )
    else:
        by_width = {lay.width: ModelType(name) for name, lay in LAYOUTS.items()}
        if width not in by_width:
            raise ArrayShapeError(
                npz.path,
                f"'poses' has {width} values per frame; expected 156 (SMPL+H) or 165 (SMPL-X)",
            )
        model = by_width[width]
    expected_width = LAYOUTS[model.layout].width
    if width != expected_width:
        raise ArrayShapeError(
            npz.path,
            f"'poses' has {width} values per frame but the file says {model.value} ({expected_width})",
        )

    if info.dtype.kind != "f":
        raise ArrayShapeError(npz.path, f"{pose_keys[0]!r} must be floating point, got dtype {info.dtype}")
    num_frames = info.shape[0] if info.shape else 0
    if num_frames == 0:
        raise EmptySequenceError(npz.path, "has zero frames")
    for key in pose_keys[1:]:
        _expect_shape(npz, key, npz.info(key).shape, (num_frames, _SPLIT_KEYS[key]))
    _expect_shape(npz, "trans", npz.info("trans").shape, (num_frames, 3))
    return _Layout(model=model, pose_keys=pose_keys, num_frames=num_frames, meta=meta)


def _single_part_layout(key: str) -> PoseLayout:
    """A one-part layout for a split SMPL-X key, so the split keys reuse :func:`split_flat_poses`."""
    return PoseLayout(key, _SPLIT_KEYS[key], ((key, slice(0, _SPLIT_KEYS[key])),))


def _expect_shape(npz: NpzArchive, key: str, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    if tuple(shape) != expected:
        raise ArrayShapeError(npz.path, f"{key!r} must have shape {expected}, got {tuple(shape)}")


def _betas_shape(npz: NpzArchive) -> tuple[int, ...]:
    shape = npz.info("betas").shape
    if len(shape) == 1 or (len(shape) == 2 and shape[0] == 1):
        return shape
    raise ArrayShapeError(npz.path, f"'betas' must have shape (S,), got {shape}")


def _read_float(npz: NpzArchive, key: str, check_finite: bool) -> np.ndarray:
    info = npz.info(key)
    if info.dtype.kind != "f":
        raise ArrayShapeError(npz.path, f"{key!r} must be floating point, got dtype {info.dtype}")
    if key == "betas":
        _betas_shape(npz)
    array = npz.read(key)
    if check_finite and not np.isfinite(array).all():
        bad = ~np.isfinite(array)
        count = int(bad.sum())
        where = ""
        if array.ndim >= 2:
            frame = int(np.argmax(bad.reshape(array.shape[0], -1).any(axis=1)))
            where = f", first at frame {frame}"
        raise NonFiniteError(npz.path, f"{key!r} holds {count} NaN or infinite value(s){where}")
    return array


def _read_fps(npz: NpzArchive) -> float:
    for key in _FPS_KEYS:
        if key in npz:
            value = npz.read_scalar(key)
            try:
                fps = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise InvalidValueError(npz.path, f"{key!r} must be a number, got {value!r}") from None
            if not math.isfinite(fps):
                raise NonFiniteError(npz.path, f"{key!r} is {fps}")
            if fps <= 0:
                raise InvalidValueError(npz.path, f"{key!r} must be positive, got {fps}")
            return fps
    raise MissingKeyError(
        npz.path, f"has no frame rate (looked for {' and '.join(map(repr, _FPS_KEYS))})", key=_FPS_KEYS[0]
    )


def _read_gender(npz: NpzArchive) -> Gender:
    if "gender" not in npz:
        raise MissingKeyError(npz.path, "has no 'gender' array", key="gender")
    value = npz.read_scalar("gender")
    try:
        return Gender.parse(value)
    except ValueError as exc:
        raise InvalidValueError(npz.path, f"'gender': {exc}") from None


def _read_meta(npz: NpzArchive) -> dict[str, Any]:
    if META_KEY not in npz:
        return {}
    try:
        meta = json.loads(str(npz.read_scalar(META_KEY)))
    except (ValueError, TypeError) as exc:
        raise InvalidValueError(npz.path, f"{META_KEY!r} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise InvalidValueError(npz.path, f"{META_KEY!r} must hold a JSON object")
    return meta


def _provenance(path: str | os.PathLike[str], meta: dict[str, Any]) -> Provenance:
    """Provenance from the path, overridden by what an amasskit-written file recorded."""
    from_path = Provenance.from_path(path)
    recorded = meta.get("provenance")
    if not isinstance(recorded, dict):
        return from_path
    fields = from_path.to_dict()
    fields.update({k: v for k, v in recorded.items() if k in fields and isinstance(v, str)})
    return Provenance(**fields)


def _read_markers(npz: NpzArchive, num_frames: int, dtype: np.dtype) -> Markers | None:
    for pos_key, label_key, vid_key in _MARKER_KEYS:
        if pos_key not in npz:
            continue
        positions = npz.read(pos_key)
        if positions.ndim != 3 or positions.shape[0] != num_frames or positions.shape[2] != 3:
            raise ArrayShapeError(
                npz.path, f"{pos_key!r} must have shape ({num_frames}, M, 3), got {positions.shape}"
            )
        labels: tuple[str, ...] = ()
        if label_key in npz:
            raw = npz.read(label_key).reshape(-1)
            labels = tuple(
                x.decode("ascii", "replace") if isinstance(x, bytes) else str(x) for x in raw.tolist()
            )
        vids = npz.read(vid_key).reshape(-1) if vid_key in npz else None
        return Markers(positions=positions.astype(dtype, copy=False), labels=labels, vertex_ids=vids)
    logger.debug("%s: markers asked for, but the file has none", npz.path)
    return None
