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

from typing import Final

import numpy as np

UP_AXIS: Final[int] = 2
"""Index of the vertical axis in the AMASS world frame (Z)."""

QUAT_CONVENTION: Final[str] = "xyzw"

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
