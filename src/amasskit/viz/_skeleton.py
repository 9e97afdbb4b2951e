"""A built-in, approximate human skeleton driven by SMPL-family poses, so motion can be previewed with no body model.

The rest pose is amasskit's own: a 1.70 m adult in the SMPL family's T-pose and joint order (body joints 0-21 plus a
hand end point on each wrist, SMPL's 24-joint tree), with joint heights and widths from textbook anthropometric
ratios of stature (segment lengths as fractions of height, as in Winter, *Biomechanics and Motor Control of Human
Movement*, after Drillis and Contini): hip joint 0.53 H, knee 0.285 H, ankle 0.039 H, shoulder 0.818 H, shoulder
breadth 0.259 H, upper arm 0.186 H, forearm 0.146 H, hand 0.108 H. No licensed model data is used; bones are close
to, not equal to, any body model's, so use a body model (``model_dir``) where exact joints matter.

Coordinates are the body models' own: the rest pose in the model frame (x: the subject's left, y: up, z: forward),
the root joint placed at ``trans + PELVIS_REST`` and rotated about itself, as the models' forward kinematics do, so
AMASS's Z-up world comes out Z-up.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from ..errors import InvalidArgumentError
from ..rotations import rotvec_to_rotmat
from ..topology import (
    BODY_JOINT_NAMES,
    BODY_PARENTS,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
    SMPLH_JOINT_NAMES,
    SMPLH_PARENTS,
    SMPLX_JOINT_NAMES,
    SMPLX_PARENTS,
)

__all__ = [
    "PELVIS_REST",
    "SKELETON_PARENTS",
    "SKELETON_REST",
    "joint_sides",
    "skeleton_joints",
    "skeleton_joints_rotmat",
    "tree_for",
]

_H = 1.70
_FEET = (
    -1.19
)  # the soles' height in the model frame (the models put the pelvis about 0.22 m below the origin)


def _at(x: float, height: float, z: float) -> tuple[float, float, float]:
    """A point ``height`` above the soles, ``x`` to the subject's left, ``z`` forward."""
    return (x, _FEET + height, z)


_SHOULDER_Y = 0.818 * _H
_HALF_SHOULDERS = 0.259 * _H / 2
_ELBOW_X = _HALF_SHOULDERS + 0.186 * _H
_WRIST_X = _ELBOW_X + 0.146 * _H
_HAND_X = _WRIST_X + 0.108 * _H / 2  # the hand's middle: the end point the skeleton draws to
_REST: Final[list[tuple[float, float, float]]] = [
    _at(0.0, 0.57 * _H, 0.02),  # 0 pelvis
    _at(0.050 * _H, 0.53 * _H, 0.01),  # 1 left hip
    _at(-0.050 * _H, 0.53 * _H, 0.01),  # 2 right hip
    _at(0.0, 0.63 * _H, -0.01),  # 3 spine1
    _at(0.058 * _H, 0.285 * _H, 0.01),  # 4 left knee
    _at(-0.058 * _H, 0.285 * _H, 0.01),  # 5 right knee
    _at(0.0, 0.70 * _H, 0.01),  # 6 spine2
    _at(0.052 * _H, 0.039 * _H, -0.03),  # 7 left ankle
    _at(-0.052 * _H, 0.039 * _H, -0.03),  # 8 right ankle
    _at(0.0, 0.74 * _H, 0.02),  # 9 spine3
    _at(0.066 * _H, 0.012 * _H, 0.10),  # 10 left foot (ball of the foot)
    _at(-0.066 * _H, 0.012 * _H, 0.10),  # 11 right foot
    _at(0.0, 0.87 * _H, 0.0),  # 12 neck
    _at(0.045 * _H, 0.83 * _H, 0.0),  # 13 left collar
    _at(-0.045 * _H, 0.83 * _H, 0.0),  # 14 right collar
    _at(0.0, 0.93 * _H, 0.04),  # 15 head (its middle)
    _at(_HALF_SHOULDERS, _SHOULDER_Y, -0.01),  # 16 left shoulder
    _at(-_HALF_SHOULDERS, _SHOULDER_Y, -0.01),  # 17 right shoulder
    _at(_ELBOW_X, _SHOULDER_Y, -0.02),  # 18 left elbow
    _at(-_ELBOW_X, _SHOULDER_Y, -0.02),  # 19 right elbow
    _at(_WRIST_X, _SHOULDER_Y, -0.02),  # 20 left wrist
    _at(-_WRIST_X, _SHOULDER_Y, -0.02),  # 21 right wrist
    _at(_HAND_X, _SHOULDER_Y, -0.02),  # 22 left hand (end point)
    _at(-_HAND_X, _SHOULDER_Y, -0.02),  # 23 right hand (end point)
]

#: ``(24, 3)`` rest joint positions in the model frame, metres.
SKELETON_REST: Final[np.ndarray] = np.array(_REST)
SKELETON_REST.setflags(write=False)
#: the root joint's rest position (where ``trans`` is measured from)
PELVIS_REST: Final[np.ndarray] = SKELETON_REST[0]
#: SMPL's 24-joint tree
SKELETON_PARENTS: Final[tuple[int, ...]] = SMPL_PARENTS


def tree_for(num_joints: int) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """``(parents, names)`` of the SMPL-family tree with ``num_joints`` joints (22 body, 24 SMPL / this skeleton,
    52 SMPL+H, 55 SMPL-X).

    Raises:
        ValueError: any other count.
    """
    trees = {
        22: (BODY_PARENTS, BODY_JOINT_NAMES),
        24: (SMPL_PARENTS, SMPL_JOINT_NAMES),
        52: (SMPLH_PARENTS, SMPLH_JOINT_NAMES),
        55: (SMPLX_PARENTS, SMPLX_JOINT_NAMES),
    }
    if num_joints not in trees:
        raise InvalidArgumentError(f"no SMPL-family skeleton has {num_joints} joints (22, 24, 52 or 55)")
    return trees[num_joints]


def joint_sides(names: tuple[str, ...]) -> np.ndarray:
    """``(J,)`` side of each joint, for colouring: 1 left, -1 right, 0 centre."""
    return np.array([1 if n.startswith("left") else -1 if n.startswith("right") else 0 for n in names])


def skeleton_joints(root_orient: np.ndarray, pose_body: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Forward kinematics of the built-in skeleton from axis-angles.

    Args:
        root_orient: ``(T, 3)`` axis-angle of the root.
        pose_body: ``(T, 21, 3)`` or ``(T, 63)`` axis-angle of the body joints (hands and face are not drawn).
        trans: ``(T, 3)`` translation, metres.

    Returns:
        ``(T, 24, 3)`` joint positions in the world frame of the input (AMASS: Z-up), float64.
    """
    root = np.asarray(root_orient, dtype=np.float64).reshape(-1, 3)
    body = np.asarray(pose_body, dtype=np.float64).reshape(len(root), 21, 3)
    return skeleton_joints_rotmat(rotvec_to_rotmat(np.concatenate([root[:, None], body], axis=1)), trans)


def skeleton_joints_rotmat(local_rotmat: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Forward kinematics of the built-in skeleton from ``local_rotmat (T, 22, 3, 3)`` (root, then the 21 body
    joints, each relative to its parent) and ``trans (T, 3)``; returns ``(T, 24, 3)`` world joints, float64."""
    local = np.asarray(local_rotmat, dtype=np.float64)
    T = local.shape[0]
    parents = SKELETON_PARENTS
    offsets = SKELETON_REST - SKELETON_REST[list((0, *parents[1:]))]
    world_rot = np.empty((T, 24, 3, 3))
    joints = np.empty((T, 24, 3))
    world_rot[:, 0] = local[:, 0]
    joints[:, 0] = PELVIS_REST + np.asarray(trans, dtype=np.float64).reshape(T, 3)
    for j in range(1, 24):
        p = parents[j]
        joints[:, j] = joints[:, p] + world_rot[:, p] @ offsets[j]
        world_rot[:, j] = world_rot[:, p] @ local[:, j] if j < 22 else world_rot[:, p]
    return joints
