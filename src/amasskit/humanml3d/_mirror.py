"""HumanML3D's mirror: a motion's left and right exchanged (``M<id>`` motions)."""

from __future__ import annotations

from typing import Final

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["HAND_PAIRS", "MIRROR_PAIRS", "mirror_joints"]

MIRROR_PAIRS: Final[tuple[tuple[int, int], ...]] = tuple(
    zip((1, 4, 7, 10, 13, 16, 18, 20), (2, 5, 8, 11, 14, 17, 19, 21), strict=True)
)
"""``(left, right)`` body joints exchanged by the mirror (hips to wrists)."""
HAND_PAIRS: Final[tuple[tuple[int, int], ...]] = tuple(
    zip(
        (22, 23, 24, 34, 35, 36, 25, 26, 27, 31, 32, 33, 28, 29, 30),
        (43, 44, 45, 46, 47, 48, 40, 41, 42, 37, 38, 39, 49, 50, 51),
        strict=True,
    )
)
"""``(left, right)`` SMPL+H hand joints the published mirror exchanges (for 52-joint motions). As published, the
pairs do not match finger to finger (left index with right pinky, left thumb with right ring, ...); the features use
only the first 22 joints, which this does not touch."""


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """``(T, J, 3)`` Y-up positions (``J`` = 22, 24 or 52) -> the motion mirrored in the body's sagittal plane: x
    negated, left and right joints exchanged (with 52 joints, the hands as published: :data:`HAND_PAIRS`)."""
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[-1] != 3 or joints.shape[1] < 22:
        raise InvalidArgumentError(f"joints must be (T, J >= 22, 3), got {joints.shape}")
    out = joints.copy()
    out[..., 0] *= -1
    pairs = MIRROR_PAIRS + (HAND_PAIRS if joints.shape[1] > 24 else ())
    left = [a for a, _ in pairs]
    right = [b for _, b in pairs]
    out[:, left + right] = out[:, right + left]
    return out
