"""Rotation conversions in numpy, float64, over flat batches: axis-angle, unit quaternions (XYZW), matrices, 6D.

amasskit uses roma for rotations wherever it works on torch tensors. These few conversions are written in numpy for
``prepare``'s workers: with them a worker resamples, canonicalises, augments and converts without importing torch at
all (importing torch and roma costs 1.5-2 s per process, longer than a worker's share of a small tree), and the
flat, concatenation-free forms measured faster than roma's on the same batches (see ``_slerp_rotvec``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "quat_multiply",
    "quat_to_rotmat",
    "quat_to_rotvec",
    "rotmat_to_6d",
    "rotvec_to_quat",
    "rotvec_to_rotmat",
]


def rotvec_to_quat(r: np.ndarray) -> np.ndarray:
    """``(..., 3)`` axis-angle -> ``(..., 4)`` unit quaternions XYZW."""
    flat = np.asarray(r, dtype=np.float64).reshape(-1, 3)
    angle = np.sqrt(np.einsum("ij,ij->i", flat, flat))
    half = 0.5 * angle
    small = angle < 1e-6
    # sin(a/2)/a, with its series where a is tiny (no division by ~0)
    scale = np.where(small, 0.5 - angle * angle / 48.0, np.sin(half) / np.where(small, 1.0, angle))
    q = np.empty((flat.shape[0], 4))
    np.multiply(flat, scale[:, None], out=q[:, :3])
    np.cos(half, out=q[:, 3])
    return q.reshape(*np.shape(r)[:-1], 4)


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` unit quaternions XYZW -> ``(..., 3)`` axis-angle with angle in ``[0, pi]``."""
    flat = np.asarray(q, dtype=np.float64).reshape(-1, 4)
    sign = np.where(flat[:, 3] < 0, -1.0, 1.0)
    w = flat[:, 3] * sign
    v = flat[:, :3]
    s = np.sqrt(np.einsum("ij,ij->i", v, v))
    small = s < 1e-8
    angle = 2.0 * np.arctan2(s, w)
    scale = sign * np.where(small, 2.0 / np.where(w == 0, 1.0, w), angle / np.where(small, 1.0, s))
    return (v * scale[:, None]).reshape(*np.shape(q)[:-1], 3)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The Hamilton product ``a * b`` of XYZW quaternions (broadcasting): the rotation ``b`` then ``a``."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` unit quaternions XYZW -> ``(..., 3, 3)`` rotation matrices."""
    x, y, z, w = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz, wx, wy, wz = x * y, x * z, y * z, w * x, w * y, w * z
    return np.stack(
        [
            1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
            2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
            2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
        ],
        axis=-1,
    ).reshape(*np.shape(q)[:-1], 3, 3)  # fmt: skip


def rotvec_to_rotmat(r: np.ndarray) -> np.ndarray:
    """``(..., 3)`` axis-angle -> ``(..., 3, 3)`` rotation matrices."""
    return quat_to_rotmat(rotvec_to_quat(r))


def rotmat_to_6d(R: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` -> ``(..., 6)``: the first column, then the second (as :func:`amasskit.body.from_rotmat`)."""
    return np.swapaxes(R[..., :, :2], -1, -2).reshape(*R.shape[:-2], 6)
