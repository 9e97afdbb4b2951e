"""Kinematic trees and joint names of the SMPL family, and the left/right pairs used for mirroring.

Joint order is the body models' own. Body joints 0-21 are shared by SMPL, SMPL+H and SMPL-X; SMPL+H adds 15 joints per
hand (fingers in the order index, middle, pinky, ring, thumb; three joints each), SMPL-X adds jaw and eyes before the
hands. Parents are ``-1`` for the root.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from .errors import InvalidArgumentError

BODY_JOINT_NAMES: Final[tuple[str, ...]] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)  # fmt: skip
BODY_PARENTS: Final[tuple[int, ...]] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
)  # fmt: skip

NUM_BODY_JOINTS: Final[int] = 21
"""Body joints excluding the root (the 63 values of ``pose_body``)."""
NUM_HAND_JOINTS: Final[int] = 15
"""Joints per hand."""

FINGERS: Final[tuple[str, ...]] = ("index", "middle", "pinky", "ring", "thumb")


def _hand(side: str, wrist: int, first: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    names: list[str] = []
    parents: list[int] = []
    for f, finger in enumerate(FINGERS):
        for k in range(3):
            names.append(f"{side}_{finger}{k + 1}")
            parents.append(wrist if k == 0 else first + 3 * f + k - 1)
    return tuple(names), tuple(parents)


_LEFT_HAND_H = _hand("left", 20, 22)
_RIGHT_HAND_H = _hand("right", 21, 37)
SMPLH_JOINT_NAMES: Final[tuple[str, ...]] = BODY_JOINT_NAMES + _LEFT_HAND_H[0] + _RIGHT_HAND_H[0]
SMPLH_PARENTS: Final[tuple[int, ...]] = BODY_PARENTS + _LEFT_HAND_H[1] + _RIGHT_HAND_H[1]

_LEFT_HAND_X = _hand("left", 20, 25)
_RIGHT_HAND_X = _hand("right", 21, 40)
SMPLX_JOINT_NAMES: Final[tuple[str, ...]] = (
    BODY_JOINT_NAMES + ("jaw", "left_eye_smplhf", "right_eye_smplhf") + _LEFT_HAND_X[0] + _RIGHT_HAND_X[0]
)
SMPLX_PARENTS: Final[tuple[int, ...]] = BODY_PARENTS + (15, 15, 15) + _LEFT_HAND_X[1] + _RIGHT_HAND_X[1]

SMPL_JOINT_NAMES: Final[tuple[str, ...]] = (*BODY_JOINT_NAMES, "left_hand", "right_hand")
SMPL_PARENTS: Final[tuple[int, ...]] = (*BODY_PARENTS, 20, 21)

BODY_MIRROR_PAIRS: Final[tuple[tuple[int, int], ...]] = (
    (1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21),
)  # fmt: skip
"""Left/right body joint pairs (indices into the 22 body joints)."""


def mirror_permutation(num_joints: int) -> np.ndarray:
    """Index array that swaps every left joint with its right twin.

    Args:
        num_joints: 22 (body), 24 (SMPL), 52 (SMPL+H) or 55 (SMPL-X).

    Returns:
        ``(num_joints,)`` int64 permutation ``p`` such that ``joints[..., p, :]`` is the mirrored joint order.
    """
    perm = np.arange(num_joints)
    pairs = list(BODY_MIRROR_PAIRS)
    if num_joints == 24:
        pairs.append((22, 23))
    elif num_joints == 52:
        pairs += [(22 + k, 37 + k) for k in range(NUM_HAND_JOINTS)]
    elif num_joints == 55:
        pairs += [(23, 24)] + [(25 + k, 40 + k) for k in range(NUM_HAND_JOINTS)]
    elif num_joints != 22:
        raise InvalidArgumentError(f"No mirror table for {num_joints} joints; expected 22, 24, 52 or 55.")
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


def parents_array(parents: tuple[int, ...]) -> np.ndarray:
    """``parents`` as an int64 array, checked to be a tree in topological order (each parent before its child)."""
    arr = np.asarray(parents, dtype=np.int64)
    if arr[0] != -1 or np.any(arr[1:] < 0) or np.any(arr[1:] >= np.arange(1, len(arr))):
        raise InvalidArgumentError("Parents must start with -1 and list every parent before its child.")
    return arr
