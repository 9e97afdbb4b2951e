"""Conventions used everywhere in amasskit, stated once.

Frames and units
    AMASS world frame is **Z-up** (gravity along -Z), metres, radians, seconds. Body models are defined in their own
    Y-up frame; ``root_orient`` carries the rotation from the model frame to the world, and the posed pelvis sits at
    ``trans + J_pelvis(betas)`` (the pelvis offset is *not* rotated by ``root_orient``).

Rotations
    * ``rotvec``: axis-angle, shape ``(..., 3)``, angle in radians = norm.
    * ``quat``: unit quaternion, shape ``(..., 4)``, **XYZW** (scalar last), as roma and SciPy.
    * ``rotmat``: rotation matrix, shape ``(..., 3, 3)``, acting on column vectors.
    * ``6d``: the first two **columns** of the rotation matrix, shape ``(..., 6)`` as ``[c0x, c0y, c0z, c1x, c1y, c1z]``.

Names carry the representation: ``pose_rotvec``, ``body_quat``, ``rel_rotmat`` (relative to the parent joint),
``glob_rotmat`` (world). Transforms are named ``T_<to>_<from>``: ``T_world_root`` maps root coordinates to world.

Arrays
    Struct-of-arrays over time: a sequence's arrays have the frame axis first, ``(T, ...)``. float32 by default,
    float64 on request.
"""

from __future__ import annotations

from enum import Enum
from typing import Final, Literal, get_args

import numpy as np

__all__ = [
    "DEFAULT_DTYPE",
    "POSE_PARTS",
    "QUAT_CONVENTION",
    "ROTATIONS",
    "ROTATION_SHAPES",
    "SUPPORTED_DTYPES",
    "UP_AXIS",
    "ModelType",
    "Rotation",
    "resolve_dtype",
]

UP_AXIS: Final[int] = 2
"""Index of the vertical axis in the AMASS world frame (Z)."""

QUAT_CONVENTION: Final[str] = "xyzw"

Rotation = Literal["rotvec", "quat", "rotmat", "6d"]
"""The name of a rotation representation (see the module docstring)."""

ROTATIONS: Final[tuple[Rotation, ...]] = get_args(Rotation)
"""Every rotation representation, in the order of :data:`Rotation`."""

ROTATION_SHAPES: Final[dict[str, tuple[int, ...]]] = {
    "rotvec": (3,),
    "quat": (4,),
    "rotmat": (3, 3),
    "6d": (6,),
}
"""Trailing shape of one rotation in each representation."""

POSE_PARTS: Final[tuple[str, ...]] = ("root_orient", "pose_body", "pose_hand", "pose_jaw", "pose_eye")
"""The named pose parts of a sequence, in the order amasskit stores them (jaw and eyes: SMPL-X only)."""


class ModelType(str, Enum):
    """The SMPL-family body models. Motion sequences are SMPL+H or SMPL-X (AMASS's releases); SMPL is a body model
    amasskit can run and convert to and from."""

    SMPL = "smpl"
    SMPLH = "smplh"
    SMPLX = "smplx"

    @classmethod
    def parse(cls, value: object) -> ModelType:
        """Model type from ``'smpl'``/``'smplh'``/``'smplx'`` (str, bytes or 0-d array; ``smpl+h``, ``SMPL-X``
        accepted).

        Raises:
            ValueError: any other value.
        """
        if isinstance(value, ModelType):
            return value
        if isinstance(value, np.ndarray) and value.size == 1:
            value = value.reshape(()).item()
        if isinstance(value, (bytes, np.bytes_)):
            value = bytes(value).decode("ascii", errors="replace")
        if isinstance(value, str):
            text = value.strip().lower().replace("+", "").replace("-", "")
            try:
                return cls(text)
            except ValueError:
                pass
        raise ValueError(f"model type must be 'smpl', 'smplh' or 'smplx', got {value!r}")

    @property
    def layout(self) -> str:
        """Name of the flat pose layout of this model's AMASS release (see :mod:`amasskit.layouts`)."""
        return self.value

    def __str__(self) -> str:
        return self.value


DEFAULT_DTYPE: Final[np.dtype] = np.dtype(np.float32)
"""dtype of arrays amasskit returns unless asked for another."""

SUPPORTED_DTYPES: Final[tuple[np.dtype, ...]] = (np.dtype(np.float32), np.dtype(np.float64))


def resolve_dtype(dtype: object) -> np.dtype:
    """The float dtype asked for, as a ``np.dtype``; only float32 and float64 are supported.

    Raises:
        TypeError: any other dtype.
    """
    resolved = np.dtype(dtype)  # type: ignore[call-overload]
    if resolved not in SUPPORTED_DTYPES:
        raise TypeError(f"amasskit arrays are float32 or float64, not {resolved}.")
    return resolved
