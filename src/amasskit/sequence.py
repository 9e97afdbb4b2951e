"""The in-memory motion sequence: :class:`Sequence`, struct-of-arrays with named pose parts.

A sequence holds arrays over time (frame axis first) for one capture, in one body model's parameter space, with its
shape, gender, frame rate and where it came from. Rotations are axis-angle (``rotvec``); see
:mod:`amasskit.conventions` for frames and units.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .conventions import DEFAULT_DTYPE, POSE_PARTS, ModelType, resolve_dtype
from .errors import SequenceError
from .layouts import PART_SHAPES, join_pose_parts, sequence_name, split_flat_poses

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Gender", "Markers", "ModelType", "Provenance", "Sequence"]


class Gender(str, Enum):
    """Body-model gender. Parse file values with :meth:`parse`, never by comparing raw strings."""

    MALE = "male"
    FEMALE = "female"
    NEUTRAL = "neutral"

    @classmethod
    def parse(cls, value: object) -> Gender:
        """Gender from what files hold: ``'male'``, ``b'female'``, a 0-d numpy str/bytes array, any case.

        Raises:
            ValueError: anything that is not one of the three genders.
        """
        if isinstance(value, Gender):
            return value
        if isinstance(value, np.ndarray):
            if value.ndim != 0 and value.size != 1:
                raise ValueError(f"gender must be a scalar, got an array of shape {value.shape}")
            value = value.reshape(()).item()
        if isinstance(value, (bytes, bytearray, np.bytes_)):
            raw = bytes(value)
            try:
                value = raw.decode("ascii")
            except UnicodeDecodeError:
                raise ValueError(f"gender {raw!r} is not ASCII") from None
        if isinstance(value, str):
            text = value.strip().strip("\x00").lower()
            try:
                return cls(text)
            except ValueError:
                pass
        raise ValueError(f"gender must be one of 'male', 'female', 'neutral' (str or bytes), got {value!r}")

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Provenance:
    """Where a sequence came from. All optional: synthetic or user-built sequences may have none.

    Attributes:
        source: path of the file it was read from.
        dataset: sub-dataset folder name as found on disk (for example ``CMU``); canonical names are the catalog's.
        subject: subject folder name.
        name: sequence name, without the ``_poses``/``_stageii`` suffix and extension.
    """

    source: str | None = None
    dataset: str | None = None
    subject: str | None = None
    name: str | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Provenance:
        """Provenance from the AMASS layout ``<Dataset>/<Subject>/<sequence>.npz``."""
        source = os.fspath(path)
        folder, filename = os.path.split(source)
        name = sequence_name(filename if filename.lower().endswith(".npz") else os.path.splitext(filename)[0])
        folder, subject = os.path.split(folder)
        dataset = os.path.basename(folder)
        return cls(source=source, dataset=dataset or None, subject=subject or None, name=name)

    def to_dict(self) -> dict[str, str | None]:
        return {"source": self.source, "dataset": self.dataset, "subject": self.subject, "name": self.name}


@dataclass(frozen=True, eq=False)
class Markers:
    """Optional mocap markers kept beside the motion when asked for (``read(..., markers=True)``).

    Attributes:
        positions: ``(T, M, 3)`` marker positions in metres; may contain NaN (occluded markers).
        labels: ``(M,)`` marker names.
        vertex_ids: ``(M,)`` body-model vertex each marker sits on, where the file says.
    """

    positions: np.ndarray
    labels: tuple[str, ...]
    vertex_ids: np.ndarray | None = None


_TIME_FIELDS = (*POSE_PARTS, "trans", "dmpls")
_FLOAT_FIELDS = (*_TIME_FIELDS, "betas")


@dataclass(frozen=True, eq=False)
class Sequence:
    """One motion sequence, struct-of-arrays, frame axis first.

    Attributes:
        root_orient: ``(T, 3)`` pelvis orientation in the world, axis-angle.
        pose_body: ``(T, 21, 3)`` body joints relative to their parents, axis-angle.
        pose_hand: ``(T, 30, 3)`` left hand's 15 joints then the right hand's, axis-angle (flat hand mean: no mean added).
        trans: ``(T, 3)`` root translation in metres, Z-up world.
        betas: ``(S,)`` body shape coefficients (16 in AMASS).
        gender: body-model gender.
        fps: frames per second (may be non-integer, such as 120.00004578).
        model: the body model the parameters belong to.
        pose_jaw: ``(T, 3)`` jaw, SMPL-X only.
        pose_eye: ``(T, 2, 3)`` left and right eye, SMPL-X only.
        dmpls: ``(T, 8)`` DMPL soft-tissue coefficients, where present.
        provenance: where it came from.
        markers: original mocap markers, only when asked for.

    All float arrays share one dtype (float32 by default, or float64). Sequences are immutable: derive new ones with
    :meth:`replace`, slicing or :meth:`astype`. Equality (``==``) compares every array exactly.

    Raises:
        SequenceError: shapes, frame counts or dtypes that do not fit together, or a frame rate that is not a
            positive finite number.
    """

    root_orient: np.ndarray
    pose_body: np.ndarray
    pose_hand: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    gender: Gender
    fps: float
    model: ModelType = ModelType.SMPLH
    pose_jaw: np.ndarray | None = None
    pose_eye: np.ndarray | None = None
    dmpls: np.ndarray | None = None
    provenance: Provenance = field(default_factory=Provenance)
    markers: Markers | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "gender", _parse_or_raise(Gender, self.gender))
        set_(self, "model", _parse_or_raise(ModelType, self.model))
        if self.model is ModelType.SMPL:
            raise SequenceError(
                "model type 'smpl': a Sequence holds SMPL+H or SMPL-X parameters (AMASS's releases)."
            )
        try:
            fps = float(self.fps)
        except (TypeError, ValueError):
            raise SequenceError(f"fps must be a number, got {self.fps!r}.") from None
        if not (math.isfinite(fps) and fps > 0):
            raise SequenceError(f"fps must be positive and finite, got {fps!r}.")
        set_(self, "fps", fps)

        dtypes = set()
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, np.ndarray):
                raise SequenceError(f"{name} must be a numpy array, got {type(value).__name__}.")
            dtypes.add(value.dtype)
        if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
            found = ", ".join(sorted(str(d) for d in dtypes))
            raise SequenceError(
                f"All arrays of a Sequence must share one dtype, float32 or float64; found {found}."
            )

        if self.root_orient.ndim != 2:
            raise SequenceError(f"root_orient must have shape (T, 3), got {self.root_orient.shape}.")
        num_frames = self.root_orient.shape[0]
        if num_frames == 0:
            raise SequenceError("A Sequence needs at least one frame.")
        for name in POSE_PARTS:
            self._check_shape(name, (num_frames, *PART_SHAPES[name]))
        self._check_shape("trans", (num_frames, 3))
        if self.dmpls is not None and (self.dmpls.ndim != 2 or self.dmpls.shape[0] != num_frames):
            raise SequenceError(f"dmpls must have shape ({num_frames}, K), got {self.dmpls.shape}.")
        if self.betas.ndim != 1:
            raise SequenceError(f"betas must have shape (S,), got {self.betas.shape}.")

        if self.model is ModelType.SMPLX:
            if self.pose_jaw is None or self.pose_eye is None:
                raise SequenceError("An SMPL-X Sequence needs pose_jaw (T, 3) and pose_eye (T, 2, 3).")
        elif self.pose_jaw is not None or self.pose_eye is not None:
            raise SequenceError("pose_jaw and pose_eye belong to SMPL-X; an SMPL+H Sequence has neither.")
        if self.markers is not None and self.markers.positions.shape[:1] != (num_frames,):
            raise SequenceError(
                f"markers.positions must have {num_frames} frames, got shape {self.markers.positions.shape}."
            )

    def _check_shape(self, name: str, expected: tuple[int, ...]) -> None:
        value = getattr(self, name)
        if value is not None and tuple(value.shape) != expected:
            raise SequenceError(f"{name} must have shape {expected}, got {tuple(value.shape)}.")

    # ---------------------------------------------------------------- properties

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return int(self.root_orient.shape[0])

    def __len__(self) -> int:
        return self.num_frames

    @property
    def duration(self) -> float:
        """Length in seconds, ``num_frames / fps``."""
        return self.num_frames / self.fps

    @property
    def dtype(self) -> np.dtype:
        """The float dtype shared by every array."""
        return self.root_orient.dtype

    @property
    def num_betas(self) -> int:
        return int(self.betas.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """The float arrays present, by field name (``pose_jaw``, ``pose_eye``, ``dmpls`` only where present)."""
        return {name: getattr(self, name) for name in _FLOAT_FIELDS if getattr(self, name) is not None}

    def times(self) -> np.ndarray:
        """``(T,)`` float64 time of each frame in seconds, starting at 0."""
        return np.arange(self.num_frames, dtype=np.float64) / self.fps

    # ---------------------------------------------------------------- derivation

    def replace(self, **changes: Any) -> Self:
        """A copy with the given fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)

    def astype(self, dtype: object) -> Self:
        """The same sequence with every float array in ``dtype`` (float32 or float64)."""
        target = resolve_dtype(dtype)
        if target == self.dtype:
            return self
        changes: dict[str, Any] = {name: arr.astype(target) for name, arr in self.arrays().items()}
        return self.replace(**changes)

    def __getitem__(self, index: slice | int) -> Self:
        """Slice in time: ``seq[10:50]``, ``seq[::2]`` (a plain stride; resample by time with the ops instead),
        or ``seq[k]`` for a one-frame sequence."""
        if isinstance(index, (int, np.integer)):
            k = int(index)
            if not -self.num_frames <= k < self.num_frames:
                raise IndexError(f"frame {k} out of range for a sequence of {self.num_frames} frames")
            k %= self.num_frames
            index = slice(k, k + 1)
        if not isinstance(index, slice):
            raise TypeError(
                f"Sequences are sliced in time with an int or a slice, not {type(index).__name__}."
            )
        changes: dict[str, Any] = {
            name: arr[index] for name, arr in self.arrays().items() if name in _TIME_FIELDS
        }
        if index.step not in (None, 1):
            step = int(index.step)
            changes["fps"] = self.fps / abs(step)
        if self.markers is not None:
            changes["markers"] = dataclasses.replace(self.markers, positions=self.markers.positions[index])
        try:
            return self.replace(**changes)
        except SequenceError as exc:
            raise IndexError(f"{index} selects no frame of a sequence of {self.num_frames} frames") from exc

    def time_slice(self, start: float = 0.0, stop: float | None = None) -> Self:
        """Frames whose time ``t = frame / fps`` lies in ``[start, stop)`` seconds."""
        first = max(0, math.ceil(start * self.fps - 1e-9))
        last = self.num_frames if stop is None else min(self.num_frames, math.ceil(stop * self.fps - 1e-9))
        return self[first:last]

    # ---------------------------------------------------------------- flat layouts

    def to_flat(self, layout: str | None = None) -> np.ndarray:
        """Flat AMASS pose vector.

        Args:
            layout: ``"smplh"`` (156) or ``"smplx"`` (165); default: the model's own. An SMPL+H sequence written as
                ``smplx`` gets zero jaw and eyes; an SMPL-X sequence written as ``smplh`` loses them.

        Returns:
            ``(T, 156)`` or ``(T, 165)``, this sequence's dtype.
        """
        parts: dict[str, np.ndarray | None] = {name: getattr(self, name) for name in POSE_PARTS}
        return join_pose_parts(parts, layout or self.model.layout)

    @classmethod
    def from_flat(
        cls,
        poses: np.ndarray,
        *,
        trans: np.ndarray,
        betas: np.ndarray,
        gender: Gender | str,
        fps: float,
        model: ModelType | str | None = None,
        dmpls: np.ndarray | None = None,
        provenance: Provenance | None = None,
        dtype: object | None = None,
    ) -> Sequence:
        """A sequence from a flat AMASS pose array.

        Args:
            poses: ``(T, 156)`` (SMPL+H) or ``(T, 165)`` (SMPL-X) axis-angle.
            trans: ``(T, 3)``. betas: ``(S,)``. dmpls: ``(T, 8)`` or None.
            model: default: inferred from the width of ``poses``.
            dtype: default: float32 (:data:`amasskit.conventions.DEFAULT_DTYPE`).

        Raises:
            SequenceError: a width that is neither 156 nor 165, or arrays that do not fit together.
        """
        poses = np.asarray(poses)
        if model is None:
            widths = {156: ModelType.SMPLH, 165: ModelType.SMPLX}
            if poses.ndim != 2 or poses.shape[1] not in widths:
                raise SequenceError(f"poses must have shape (T, 156) or (T, 165), got {poses.shape}.")
            model = widths[poses.shape[1]]
        model_type: ModelType = _parse_or_raise(ModelType, model)
        target = resolve_dtype(DEFAULT_DTYPE if dtype is None else dtype)
        try:
            parts = split_flat_poses(poses, model_type.layout)
        except ValueError as exc:
            raise SequenceError(str(exc)) from None
        arrays: dict[str, Any] = {
            name: np.ascontiguousarray(arr, dtype=target) for name, arr in parts.items()
        }
        return cls(
            **arrays,
            trans=np.ascontiguousarray(trans, dtype=target),
            betas=np.ascontiguousarray(betas, dtype=target),
            gender=_parse_or_raise(Gender, gender),
            fps=fps,
            model=model_type,
            dmpls=None if dmpls is None else np.ascontiguousarray(dmpls, dtype=target),
            provenance=provenance or Provenance(),
        )

    # ---------------------------------------------------------------- files

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write this sequence to ``path`` in its release's own npz layout (atomic; see :func:`amasskit.io.write`).

        Reading the file back with :func:`amasskit.read` at the same dtype returns an equal sequence.
        """
        from .io import write

        return write(self, path)

    # ---------------------------------------------------------------- comparison

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        if (self.gender, self.fps, self.model, self.provenance) != (
            other.gender,
            other.fps,
            other.model,
            other.provenance,
        ):
            return False
        mine, theirs = self.arrays(), other.arrays()
        if mine.keys() != theirs.keys():
            return False
        if not all(a.dtype == theirs[k].dtype and np.array_equal(a, theirs[k]) for k, a in mine.items()):
            return False
        return _markers_equal(self.markers, other.markers)

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("Sequence is not iterable; index frames with seq[k] or use its arrays.")

    def __repr__(self) -> str:
        prov = self.provenance
        where = "/".join(p for p in (prov.dataset, prov.subject, prov.name) if p) or "unnamed"
        extras = [name for name in ("pose_jaw", "dmpls") if getattr(self, name) is not None]
        return (
            f"Sequence({where}, {self.model.value}, {self.gender.value}, T={self.num_frames}, fps={self.fps:g}, "
            f"betas={self.num_betas}, {self.dtype}{', ' + ', '.join(extras) if extras else ''})"
        )


def _markers_equal(a: Markers | None, b: Markers | None) -> bool:
    if a is None or b is None:
        return a is b
    if a.labels != b.labels or not np.array_equal(a.positions, b.positions, equal_nan=True):
        return False
    if a.vertex_ids is None or b.vertex_ids is None:
        return a.vertex_ids is b.vertex_ids
    return np.array_equal(a.vertex_ids, b.vertex_ids)


def _parse_or_raise(enum: type[Gender] | type[ModelType], value: object) -> Any:
    try:
        return enum.parse(value)
    except ValueError as exc:
        raise SequenceError(str(exc)) from None
