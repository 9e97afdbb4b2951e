"""The HumanML3D skeleton: SMPL's first 22 joints, Y-up, facing +z, left at +x, and its inverse and forward
kinematics as the published features define them.

The definitions follow HumanML3D's ``paramUtil.py`` and ``common/skeleton.py`` (EricGuo5513/HumanML3D, MIT), written
here from what they compute: each joint's rotation is the smallest rotation taking its rest direction
(:data:`RAW_OFFSETS`, an axis) to its bone, relative to the rotation accumulated along its chain, where every chain
starts from the root's rotation (so the collars, 13 and 14, are relative to the root, not to the spine joint 9 their
chains start at). Quaternions here are amasskit's XYZW.

The published procedure's quirk, kept because the published data carry it: inverse kinematics reads the facing
joints ``(2, 1, 17, 16)`` as ``(left hip, right hip, right shoulder, left shoulder)`` while the rest of the procedure
reads them as ``(right hip, left hip, ...)``, so the root's facing direction there is taken from the shoulders'
left-right vector minus the hips' (see :func:`facing_across`); and it takes the first frame's root rotation as the
identity whatever the first frame's facing (the released ``common/skeleton.py`` that made the data sets it; the
repository's current copy has the line commented out, and its features then differ from the published ones at the
first frame by up to 0.1 rad).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from ..rotations import quat_inverse, quat_product

__all__ = [
    "FACE_JOINTS",
    "FOOT_JOINTS",
    "KINEMATIC_CHAINS",
    "LEG_JOINTS",
    "NUM_JOINTS",
    "PARENTS",
    "RAW_OFFSETS",
    "bone_lengths",
    "forward_kinematics",
    "inverse_kinematics",
    "offsets_from_lengths",
    "quat_between",
    "quat_rotate",
]

NUM_JOINTS: Final = 22
RAW_OFFSETS: Final[np.ndarray] = np.array(
    [
        [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0],
        [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, -1, 0], [0, -1, 0],
        [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
    ],
    dtype=np.float64,
)  # fmt: skip
"""``(22, 3)``: each joint's rest direction from its parent (an axis: +x is the body's left, +y up, +z forward)."""
KINEMATIC_CHAINS: Final[tuple[tuple[int, ...], ...]] = (
    (0, 2, 5, 8, 11),  # right leg
    (0, 1, 4, 7, 10),  # left leg
    (0, 3, 6, 9, 12, 15),  # spine and head
    (9, 14, 17, 19, 21),  # right arm
    (9, 13, 16, 18, 20),  # left arm
)
PARENTS: Final[tuple[int, ...]] = tuple(
    [-1] + [next(c[c.index(j) - 1] for c in KINEMATIC_CHAINS if j in c[1:]) for j in range(1, NUM_JOINTS)]
)
FACE_JOINTS: Final[tuple[int, int, int, int]] = (2, 1, 17, 16)
"""Right hip, left hip, right shoulder, left shoulder: the joints the facing direction is taken from."""
LEG_JOINTS: Final[tuple[int, int]] = (5, 8)
"""The right knee and ankle: the bones (thigh, shin) whose summed length scales a motion to the target skeleton."""
FOOT_JOINTS: Final[dict[str, tuple[int, int]]] = {"left": (7, 10), "right": (8, 11)}
"""Ankle and toe of each foot: the joints of the foot contacts."""


def _cross(a: Any, b: Any) -> Any:
    """``a x b`` over the last axis of numpy arrays or torch tensors (broadcasting), written out so both give the
    same float32 roundings."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    xp = np if isinstance(a, np.ndarray) else _torch()
    return xp.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)


def _torch() -> Any:
    import torch

    return torch


def quat_rotate(quat: Any, v: Any) -> Any:
    """Rotate ``v (..., 3)`` by unit XYZW quaternions ``quat (..., 4)`` (numpy arrays or torch tensors,
    broadcasting): ``v + 2 (w (u x v) + u x (u x v))``."""
    u, w = quat[..., :3], quat[..., 3:]
    if isinstance(u, np.ndarray):
        u, v = np.broadcast_arrays(u, v)
    else:
        u, v = _torch().broadcast_tensors(u, v)
    uv = _cross(u, v)
    return v + 2.0 * (w * uv + _cross(u, uv))


def quat_between(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """The smallest rotation taking the direction of ``v0`` to that of ``v1`` (``(..., 3)`` each, broadcasting), as
    unit XYZW quaternions: ``(v0 x v1, |v0| |v1| + v0 . v1)`` normalised. Opposite vectors have no unique answer
    (the result is NaN, as the published procedure's)."""
    v0, v1 = np.broadcast_arrays(v0, v1)
    xyz = _cross(v0, v1)
    w = np.sqrt((v0 * v0).sum(-1) * (v1 * v1).sum(-1)) + (v0 * v1).sum(-1)
    q = np.concatenate([xyz, w[..., None]], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """``(..., 22, 3)`` positions -> ``(..., 22)`` the length of each joint's bone from its parent (0 for the root)."""
    parents = np.array([0, *PARENTS[1:]])
    lengths = np.linalg.norm(joints - joints[..., parents, :], axis=-1)
    lengths[..., 0] = 0.0
    return lengths


def offsets_from_lengths(lengths: np.ndarray) -> np.ndarray:
    """``(22,)`` bone lengths -> ``(22, 3)`` offsets along :data:`RAW_OFFSETS` (a skeleton for
    :func:`forward_kinematics`)."""
    return np.asarray(lengths, dtype=np.float64)[:, None] * RAW_OFFSETS


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """``(T, ...)`` smoothed along axis 0 by a Gaussian of ``sigma`` samples, truncated at ``4 sigma`` (rounded),
    the ends extended by their edge values (``scipy.ndimage.gaussian_filter1d(x, sigma, axis=0, mode="nearest")``,
    written out: scipy is not a dependency)."""
    radius = int(4.0 * sigma + 0.5)
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * taps**2 / sigma**2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(x[:1], radius, 0), x, np.repeat(x[-1:], radius, 0)], axis=0)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=0)  # (T, ..., taps)
    return windows @ kernel


def facing_across(joints: np.ndarray, *, as_inverse_kinematics: bool) -> np.ndarray:
    """``(..., 22, 3)`` -> ``(..., 3)`` the body's right-pointing vector the facing direction is taken from:
    right hip - left hip + right shoulder - left shoulder, normalised; ``as_inverse_kinematics``: the published
    inverse kinematics' reading, left hip - right hip + right shoulder - left shoulder (the module's quirk)."""
    r_hip, l_hip, r_sh, l_sh = FACE_JOINTS
    hips = joints[..., r_hip, :] - joints[..., l_hip, :]
    if as_inverse_kinematics:
        hips = -hips
    return _unit(hips + joints[..., r_sh, :] - joints[..., l_sh, :])


def facing_rotation(across: np.ndarray, *, smooth: bool = False) -> np.ndarray:
    """``(T, 3)`` right-pointing vectors -> ``(T, 4)`` the rotations about +y turning each facing direction
    (``y x across``) to +z; ``smooth``: the directions smoothed over time first (a Gaussian of 20 frames)."""
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
    if smooth:
        forward = gaussian_smooth(forward, 20.0)
    return quat_between(_unit(forward), np.array([0.0, 0.0, 1.0]))


# the chains' steps side by side: step k of every chain long enough, as (chain indices, parents, joints)
_STEPS: Final[tuple[tuple[list[int], list[int], list[int]], ...]] = tuple(
    (
        [c for c, chain in enumerate(KINEMATIC_CHAINS) if len(chain) > k + 1],
        [chain[k] for chain in KINEMATIC_CHAINS if len(chain) > k + 1],
        [chain[k + 1] for chain in KINEMATIC_CHAINS if len(chain) > k + 1],
    )
    for k in range(max(map(len, KINEMATIC_CHAINS)) - 1)
)


def inverse_kinematics(joints: np.ndarray, *, smooth_forward: bool = False) -> np.ndarray:
    """``(T, 22, 3)`` positions -> ``(T, 22, 4)`` XYZW rotations: the root's turns the facing direction to +z (about
    +y; the first frame's is the identity), each other joint's turns its rest direction to its bone, relative to its
    chain's accumulated rotation (the five chains a step at a time, side by side)."""
    T = joints.shape[0]
    root = facing_rotation(facing_across(joints, as_inverse_kinematics=True), smooth=smooth_forward)
    root[0] = (0.0, 0.0, 0.0, 1.0)  # as published: the first frame's root rotation is the identity
    quat = np.zeros((T, NUM_JOINTS, 4))
    quat[:, 0] = root
    accumulated = np.repeat(root[:, None], len(KINEMATIC_CHAINS), axis=1)  # (T, chains, 4)
    for chains, parents, children in _STEPS:
        bone = _unit(joints[:, children] - joints[:, parents])
        local = quat_product(quat_inverse(accumulated[:, chains]), quat_between(RAW_OFFSETS[children], bone))
        quat[:, children] = local
        accumulated[:, chains] = quat_product(accumulated[:, chains], local)
    return quat


def forward_kinematics(quat: np.ndarray, root: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``(T, 22, 4)`` XYZW rotations (as :func:`inverse_kinematics` gives), ``(T, 3)`` root positions and ``(22, 3)``
    offsets -> ``(T, 22, 3)`` positions."""
    bones = np.zeros((*quat.shape[:-1], 3))  # each joint's offset from its parent, rotated into place
    accumulated = np.repeat(quat[:, :1], len(KINEMATIC_CHAINS), axis=1)
    for chains, _, children in _STEPS:
        accumulated[:, chains] = quat_product(accumulated[:, chains], quat[:, children])
        bones[:, children] = quat_rotate(accumulated[:, chains], offsets[children])
    joints = np.zeros_like(bones)
    joints[:, 0] = root
    for joint in range(1, NUM_JOINTS):  # parents come before their children
        joints[:, joint] = joints[:, PARENTS[joint]] + bones[:, joint]
    return joints
