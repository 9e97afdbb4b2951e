"""HumanML3D's feature step against the published sample and an independent per-frame float64 reimplementation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from amasskit.errors import InvalidArgumentError
from amasskit.humanml3d import (
    FEATURE_SIZE,
    FEATURE_SLICES,
    features,
    mirror_joints,
    published_mean_std,
    published_split,
    recover_joints,
    target_lengths,
)

from . import reference

PUBLISHED = Path(__file__).resolve().parents[3] / "shared" / "data" / "humanml3d"
needs_published = pytest.mark.skipif(
    not (PUBLISHED / "new_joint_vecs_012314.npy").exists(),
    reason=f"the published HumanML3D sample is not at {PUBLISHED} (../shared beside the checkout)",
)


def _rodrigues(v: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K


def synthetic_motion(frames: int, seed: int, lengths: np.ndarray | None = None) -> np.ndarray:
    """``(frames, 22, 3)`` Y-up positions: a skeleton (its own bone lengths) walking and turning, every joint bending
    smoothly; built with the reference's forward kinematics."""
    rng = np.random.default_rng(seed)
    if lengths is None:
        lengths = target_lengths() * rng.uniform(0.85, 1.15, size=22)
    t = np.arange(frames) / 20.0
    amplitude, frequency, phase = (
        rng.uniform(0.1, 0.5, (22, 3)),
        rng.uniform(0.3, 1.5, (22, 3)),
        rng.uniform(0, 6, (22, 3)),
    )
    heading = 0.7 + 0.4 * np.sin(0.5 * t) + rng.uniform(-3, 3)
    roots = np.array(
        [
            reference.about_y(h) @ _rodrigues(np.array([0.1 * math.sin(s), 0, 0.05]))
            for h, s in zip(heading, t, strict=True)
        ]
    )
    local = np.zeros((frames, 22, 3, 3))
    for f in range(frames):
        for j in range(22):
            local[f, j] = _rodrigues(amplitude[j] * np.sin(frequency[j] * t[f] * 2 * np.pi + phase[j]))
    # the straight-leg rest pose is where the hips point sideways: start from the rest directions themselves
    path = np.stack(
        [np.cumsum(np.sin(heading)) * 0.05, 0.9 + 0.02 * np.sin(3 * t), np.cumsum(np.cos(heading)) * 0.05], -1
    )
    return reference.forward_kinematics(roots, local, path, lengths)  # fmt: skip


@needs_published
def test_recovering_the_published_features_gives_the_published_joints_exactly() -> None:
    vecs = np.load(PUBLISHED / "new_joint_vecs_012314.npy")
    joints = np.load(PUBLISHED / "new_joints_012314.npy")
    recovered = recover_joints(vecs)
    assert recovered.dtype == np.float32 and recovered.shape == joints.shape
    assert np.array_equal(recovered, joints)
    as_tensor = recover_joints(torch.from_numpy(vecs))  # the same from torch, a tensor back
    assert isinstance(as_tensor, torch.Tensor) and torch.equal(as_tensor, torch.from_numpy(joints))


@needs_published
def test_the_feature_step_on_the_published_joints_reaches_the_originals_own_agreement() -> None:
    """The original procedure run on new_joints_012314 agrees with new_joint_vecs_012314 to these (SOURCES.md, two
    significant digits: the bounds allow the rounding); the step re-canonicalises an already canonical motion."""
    vecs = np.load(PUBLISHED / "new_joint_vecs_012314.npy")
    joints = np.load(PUBLISHED / "new_joints_012314.npy").astype(np.float64)
    first = joints[0]
    lengths = np.array([0.0] + [np.linalg.norm(first[j] - first[reference.PARENT[j]]) for j in range(1, 22)])
    ours = features(joints, target_lengths=lengths)
    assert ours.shape == (169, FEATURE_SIZE) and ours.dtype == np.float32
    bounds = {"root_rot_velocity": 3.05e-4, "root_linear_velocity": 1.45e-4, "root_height": 3.65e-7,
              "ric": 6.85e-3, "rot6d": 1.35e-2, "local_velocity": 4.15e-4, "foot_contact": 0.0}  # fmt: skip
    for part, bound in bounds.items():
        gap = np.abs(ours[:, FEATURE_SLICES[part]] - vecs[:169, FEATURE_SLICES[part]]).max()
        assert gap <= bound, (part, gap)
    # the shipped target skeleton is that motion's: the same features to float32 rounding
    shipped = features(joints)
    assert np.abs(shipped[:, :-4] - ours[:, :-4]).max() < 2e-6 and np.array_equal(
        shipped[:, -4:], ours[:, -4:]
    )


def test_features_equal_an_independent_per_frame_reimplementation() -> None:
    motion = synthetic_motion(48, seed=1)
    lengths = target_lengths()
    ours = features(motion)
    plain = reference.features(motion, lengths)
    assert ours.shape == plain.shape == (47, 263)
    contact = FEATURE_SLICES["foot_contact"]
    assert np.abs(ours[:, : contact.start] - plain[:, : contact.start]).max() < 2e-5
    assert np.array_equal(ours[:, contact], plain[:, contact]) and 0 < ours[:, contact].mean() < 1
    # a threshold of 1 m^2 makes every foot joint in contact, 0 none
    assert features(motion, foot_threshold=1.0)[:, contact].all()
    assert not features(motion, foot_threshold=0.0)[:, contact].any()


def test_recovered_joints_equal_the_reposed_canonical_motion() -> None:
    """Features -> joints gives the motion re-posed on the target skeleton, on the floor, its first frame at the
    origin facing +z (computed frame by frame by the reference), to float32 rounding."""
    motion = synthetic_motion(40, seed=2)
    vecs = features(motion)
    assert (
        np.abs(recover_joints(vecs.astype(np.float64)) - reference.recover(vecs.astype(np.float64))).max()
        < 1e-12
    )
    back = recover_joints(vecs.astype(np.float64))
    assert np.abs(back - reference.canonical(motion, target_lengths())[:-1]).max() < 2e-5
    lengths = np.linalg.norm(back[:, 1:] - back[:, [reference.PARENT[j] for j in range(1, 22)]], axis=-1)
    assert np.abs(lengths - target_lengths()[1:]).max() < 1e-4  # the target skeleton's bones
    assert abs(back[..., 1].min()) < 1e-4 and np.abs(back[0, 0, [0, 2]]).max() < 1e-6  # floor, origin


def _mirror_features(f: np.ndarray) -> np.ndarray:
    """The mirror of features, part by part: x negated, left and right exchanged, turns reversed."""
    left, right = [1, 4, 7, 10, 13, 16, 18, 20], [2, 5, 8, 11, 14, 17, 19, 21]
    swap = np.arange(22)
    swap[left + right] = right + left
    out = f.copy()
    out[:, 0] *= -1
    out[:, 1] *= -1
    ric = f[:, 4:67].reshape(-1, 21, 3)[:, swap[1:] - 1] * [-1, 1, 1]
    rot = f[:, 67:193].reshape(-1, 21, 6)[:, swap[1:] - 1] * [1, -1, -1, -1, 1, 1]
    vel = f[:, 193:259].reshape(-1, 22, 3)[:, swap] * [-1, 1, 1]
    out[:, 4:67], out[:, 67:193], out[:, 193:259] = (
        ric.reshape(-1, 63),
        rot.reshape(-1, 126),
        vel.reshape(-1, 66),
    )
    out[:, 259:263] = f[:, [261, 262, 259, 260]]
    return out


def test_mirror_twice_is_the_identity_and_features_commute_with_it() -> None:
    motion = synthetic_motion(36, seed=3)
    hands = np.random.default_rng(0).normal(size=(36, 52, 3))
    assert np.array_equal(mirror_joints(mirror_joints(motion)), motion)
    assert np.array_equal(mirror_joints(mirror_joints(hands)), hands)
    mirrored = mirror_joints(motion)
    assert np.array_equal(mirrored[:, 1, 1:], motion[:, 2, 1:]) and np.array_equal(
        mirrored[:, 1, 0], -motion[:, 2, 0]
    )
    # where the skeleton is left-right symmetric, the features of the mirror are the mirror of the features
    symmetric = target_lengths().copy()
    for a, b in zip([1, 4, 7, 10, 13, 16, 18, 20], [2, 5, 8, 11, 14, 17, 19, 21], strict=True):
        symmetric[a] = symmetric[b] = (symmetric[a] + symmetric[b]) / 2
    motion = synthetic_motion(36, seed=4, lengths=symmetric)
    a = features(mirror_joints(motion), target_lengths=symmetric)
    b = _mirror_features(features(motion, target_lengths=symmetric))
    assert np.abs(a - b).max() < 1e-5


def test_bad_input_is_refused_with_its_shape() -> None:
    with pytest.raises(InvalidArgumentError, match=r"\(T, 22, 3\)"):
        features(np.zeros((10, 21, 3)))
    with pytest.raises(InvalidArgumentError, match="at least 2 frames"):
        features(np.zeros((1, 22, 3)))
    with pytest.raises(InvalidArgumentError, match="263"):
        recover_joints(np.zeros((5, 262), dtype=np.float32))
    with pytest.raises(InvalidArgumentError, match="J >= 22"):
        mirror_joints(np.zeros((5, 10, 3)))


@needs_published
def test_the_shipped_data_are_the_published_files() -> None:
    for name in ("train", "val", "test", "train_val", "all"):
        assert published_split(name) == (PUBLISHED / f"{name}.txt").read_text().split()
    mean, std = published_mean_std()
    assert np.array_equal(mean, np.load(PUBLISHED / "Mean.npy")) and np.array_equal(
        std, np.load(PUBLISHED / "Std.npy")
    )
    with pytest.raises(InvalidArgumentError, match="train, val, test"):
        published_split("training")
