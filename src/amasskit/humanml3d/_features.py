"""HumanML3D's motion features: ``(T, 22, 3)`` joint positions -> ``(T - 1, 263)``, and back to positions.

The 263 numbers of a frame, in order (``J = 22``):

====================  =====  =================================================================================
slice                 size   what
====================  =====  =================================================================================
``[0]``               1      the root's turn about +y to the next frame, as ``arcsin`` of the y part of the
                             quaternion (half the angle, radians)
``[1:3]``             2      the root's velocity on the ground (x, z) in the frame's facing frame
``[3]``               1      the root's height above the motion's lowest joint
``[4:67]``            63     joints 1-21 relative to the root on the ground, in the facing frame (``ric``)
``[67:193]``          126    joints 1-21's rotations (inverse kinematics, facing smoothed) as the first two
                             columns of their rotation matrices (``rot6d``)
``[193:259]``         66     all joints' velocities to the next frame, in the facing frame
``[259:263]``         4      foot contacts: left ankle, left toe, right ankle, right toe (squared displacement
                             to the next frame below the threshold, 0.002 m^2 by default)
====================  =====  =================================================================================

Before the features are taken the motion is scaled and re-posed on the target skeleton (:func:`uniform_skeleton`),
put on the floor, its first frame's root moved to the origin on the ground and turned to face +z.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from ..errors import InvalidArgumentError
from ..rotations import quat_inverse, quat_product, quat_to_rotmat
from ._skeleton import (
    FOOT_JOINTS,
    LEG_JOINTS,
    NUM_JOINTS,
    bone_lengths,
    facing_across,
    facing_rotation,
    forward_kinematics,
    inverse_kinematics,
    offsets_from_lengths,
    quat_rotate,
)

__all__ = [
    "FEATURE_SIZE",
    "FEATURE_SLICES",
    "FOOT_THRESHOLD",
    "features",
    "recover_joints",
    "uniform_skeleton",
]

FOOT_THRESHOLD: Final = 0.002
FEATURE_SIZE: Final = 4 + (NUM_JOINTS - 1) * 9 + NUM_JOINTS * 3 + 4
FEATURE_SLICES: Final[dict[str, slice]] = {
    "root_rot_velocity": slice(0, 1),
    "root_linear_velocity": slice(1, 3),
    "root_height": slice(3, 4),
    "ric": slice(4, 67),
    "rot6d": slice(67, 193),
    "local_velocity": slice(193, 259),
    "foot_contact": slice(259, 263),
}
"""Where each part of :func:`features` lies in its 263 numbers."""


def _check_joints(joints: np.ndarray, *, min_frames: int) -> np.ndarray:
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[1] < NUM_JOINTS or joints.shape[2] != 3:
        raise InvalidArgumentError(
            f"joints must be (T, 22, 3) (or more joints, the first 22 used), got {joints.shape}"
        )
    if joints.shape[0] < min_frames:
        raise InvalidArgumentError(f"need at least {min_frames} frames, got {joints.shape[0]}")
    return joints[:, :NUM_JOINTS].astype(np.float64)


def uniform_skeleton(joints: np.ndarray, target_lengths: np.ndarray) -> np.ndarray:
    """``(T, 22, 3)`` -> ``(T, 22, 3)``: the motion's joint rotations (inverse kinematics) re-posed on a skeleton of
    bone lengths ``target_lengths (22,)``, its root path scaled by the ratio of the two skeletons' right legs
    (thigh + shin, as in the first frame)."""
    joints = _check_joints(joints, min_frames=1)
    source = bone_lengths(joints[0])
    target = np.asarray(target_lengths, dtype=np.float64)
    scale = target[list(LEG_JOINTS)].sum() / source[list(LEG_JOINTS)].sum()
    quat = inverse_kinematics(joints)
    return forward_kinematics(quat, joints[:, 0] * scale, offsets_from_lengths(target))


def features(
    joints: np.ndarray, *, target_lengths: np.ndarray | None = None, foot_threshold: float = FOOT_THRESHOLD
) -> np.ndarray:
    """HumanML3D's features of a motion: ``(T, 22, 3)`` Y-up joint positions (metres, SMPL's joint order; more
    joints allowed, the first 22 used) -> ``(T - 1, 263)`` float32 (see the module's table).

    Args:
        target_lengths: ``(22,)`` bone lengths of the skeleton the motion is re-posed on; default the published
            target skeleton (:func:`amasskit.humanml3d.target_lengths`).
        foot_threshold: a foot joint is in contact where its squared displacement to the next frame is below this.

    Raises:
        InvalidArgumentError: not ``(T, 22, 3)``, or fewer than 2 frames.
    """
    joints = _check_joints(joints, min_frames=2)
    if target_lengths is None:
        from ._data import target_lengths as published

        target_lengths = published()
    pos = uniform_skeleton(joints, target_lengths)
    pos[..., 1] -= pos[..., 1].min()  # on the floor
    first = pos[0].copy()
    pos -= first[0] * np.array([1.0, 0.0, 1.0])  # the first root at the origin on the ground
    turn = facing_rotation(facing_across(first, as_inverse_kinematics=False)[None])[0]
    world = quat_rotate(turn, pos)  # the first frame faces +z

    step = world[1:] - world[:-1]
    contact = (step * step).sum(-1) < foot_threshold  # (T - 1, 22)
    feet = contact[:, [*FOOT_JOINTS["left"], *FOOT_JOINTS["right"]]]

    quat = inverse_kinematics(world, smooth_forward=True)
    facing = quat[:, 0]  # (T, 4): turns each frame to face +z
    rotmat = quat_to_rotmat(quat[:, 1:])  # (T, 21, 3, 3)
    rot6d = np.concatenate([rotmat[..., 0], rotmat[..., 1]], axis=-1).reshape(len(quat), -1)
    turn_step = quat_product(facing[1:], quat_inverse(facing[:-1]))
    root_step = quat_rotate(facing[1:], world[1:, 0] - world[:-1, 0])

    local = world.copy()
    local[..., [0, 2]] -= world[:, :1, [0, 2]]
    local = quat_rotate(facing[:, None], local)
    velocity = quat_rotate(facing[:-1, None], step)

    out = np.concatenate(
        [
            np.arcsin(np.clip(turn_step[:, 1:2], -1.0, 1.0)),  # the y part of XYZW
            root_step[:, [0, 2]],
            local[:-1, 0, 1:2],
            local[:-1, 1:].reshape(len(step), -1),
            rot6d[:-1],
            velocity.reshape(len(step), -1),
            feet,
        ],
        axis=-1,
    )
    return out.astype(np.float32)


def recover_joints(features: Any) -> Any:
    """``(..., T, 263)`` features -> ``(..., T, 22, 3)`` joint positions (the features' ``ric`` part placed along the
    root path the root velocities and turns integrate to), in the features' precision and kind (numpy or torch; on
    torch's device, differentiable). HumanML3D's ``recover_from_ric``: float32 features give their published
    ``new_joints`` bit for bit on the CPU (computed with torch, whose float32 sine and cosine the published data
    used)."""
    import torch

    is_numpy = not isinstance(features, torch.Tensor)
    f = torch.from_numpy(np.asarray(features)) if is_numpy else features
    if f.shape[-1] != FEATURE_SIZE:
        raise InvalidArgumentError(f"features must have {FEATURE_SIZE} numbers a frame, got {tuple(f.shape)}")
    if not f.is_floating_point():
        f = f.double()
    angle = torch.cat([torch.zeros_like(f[..., :1, 0]), f[..., :-1, 0]], dim=-1).cumsum(-1)
    zero = torch.zeros_like(angle)
    facing_inv = torch.stack(
        [zero, -torch.sin(angle), zero, torch.cos(angle)], dim=-1
    )  # the turn back from +z
    step = torch.stack([f[..., :-1, 1], torch.zeros_like(f[..., :-1, 1]), f[..., :-1, 2]], dim=-1)
    step = torch.cat([torch.zeros_like(step[..., :1, :]), step], dim=-2)
    root = quat_rotate(facing_inv, step).cumsum(-2)
    root = torch.stack([root[..., 0], f[..., 3], root[..., 2]], dim=-1)
    ric = f[..., 4 : 4 + (NUM_JOINTS - 1) * 3].reshape(*f.shape[:-1], NUM_JOINTS - 1, 3)
    joints = quat_rotate(facing_inv[..., None, :], ric)
    joints = (
        joints + torch.stack([root[..., 0], torch.zeros_like(root[..., 0]), root[..., 2]], -1)[..., None, :]
    )
    out = torch.cat([root[..., None, :], joints], dim=-2)
    return out.numpy() if is_numpy else out
