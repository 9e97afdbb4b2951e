"""Operations on sequences: exact resampling by time, trimming, mirroring, rotation, canonicalisation, noise."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import roma
import torch

import amasskit
from amasskit import Provenance, Sequence
from amasskit.body import BodyModel
from amasskit.ops import add_pose_noise, canonicalise, heading, mirror, resample, rotate_about_vertical, trim
from amasskit.synth import plan_tree, synth_sequence, write_body_models
from amasskit.topology import BODY_JOINT_NAMES, mirror_permutation


def spinning(fps: float, seconds: float, omega: np.ndarray) -> Sequence:
    """Every joint turns at a constant angular velocity ``omega`` (rad/s, a 3-vector): R(t) = exp(t * omega)."""
    T = round(seconds * fps) + 1
    t = np.arange(T) / fps
    rot = t[:, None] * omega[None]  # rotvec of a constant-velocity rotation about a fixed axis
    return Sequence(
        root_orient=rot.copy(), pose_body=np.repeat(rot[:, None], 21, 1), pose_hand=np.repeat(rot[:, None], 30, 1),
        trans=np.stack([t, 2 * t, np.zeros(T)], 1), betas=np.zeros(16), gender="male", fps=fps,
        dmpls=np.stack([t] * 8, 1), provenance=Provenance(name="spin"),
    )  # fmt: skip


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    Ra = roma.rotvec_to_rotmat(torch.from_numpy(a))
    Rb = roma.rotvec_to_rotmat(torch.from_numpy(b))
    return roma.rotmat_geodesic_distance(Ra, Rb).numpy()


@pytest.mark.parametrize(
    ("source", "target"), [(120.0, 30.0), (120.0, 50.0), (59.9999885, 120.0), (250.0, 60.0)]
)
def test_resampling_constant_velocity_is_exact(source: float, target: float) -> None:
    """Slerp of a constant-angular-velocity rotation lands on the analytic rotation at the new times."""
    omega = np.array([0.3, -0.8, 0.5])
    seq = spinning(source, 2.0, omega)
    out = resample(seq, target)
    times = np.arange(out.num_frames) / target
    assert times[-1] <= (seq.num_frames - 1) / source + 1e-9
    assert out.num_frames == math.floor((seq.num_frames - 1) / source * target + 1e-9) + 1
    expected = times[:, None] * omega[None]
    assert angle_between(out.root_orient, expected).max() < 1e-9
    assert angle_between(out.pose_body[:, 7], expected).max() < 1e-9
    assert np.allclose(out.trans[:, :2], np.stack([times, 2 * times], 1), atol=1e-12)
    assert out.fps == target and out.dmpls is not None and np.allclose(out.dmpls[:, 0], times, atol=1e-12)


def test_resampling_down_and_up_stays_close() -> None:
    """120 -> 30 -> 120 fps of plausible motion stays within 0.05 rad of the original, away from the ends."""
    seq = synth_sequence(plan_tree(files=1, lengths="short", seed=2)[0], release="smplh", seed=2)
    seq = seq.replace(fps=120.0)
    there = resample(seq, 30.0)
    back = resample(there, 120.0)
    n = back.num_frames
    error = angle_between(back.pose_body.reshape(-1, 3), seq.pose_body[:n].reshape(-1, 3))
    assert error.max() < 0.05
    assert np.abs(back.trans - seq.trans[:n]).max() < 0.01


def test_resampling_identity_and_errors() -> None:
    seq = spinning(60.0, 1.0, np.array([0.0, 0.0, 1.0]))
    assert resample(seq, 60.0) is seq
    with pytest.raises(ValueError, match="positive"):
        resample(seq, 0.0)


def test_resampling_a_real_file_by_time(samples: Path) -> None:
    """The sample at 120.00004578 fps resampled to 30 fps: frames at k/30 s, rotations interpolated, not strided."""
    seq = amasskit.read(samples / "dmpl_sample.npz", dtype=np.float64)
    out = resample(seq, 30.0)
    assert out.fps == 30.0 and out.num_frames == math.floor((seq.num_frames - 1) / seq.fps * 30 + 1e-9) + 1
    assert not np.array_equal(
        out.pose_body[1], seq.pose_body[4]
    )  # 4 frames of 120.00004578 fps is not 1/30 s


def test_trim() -> None:
    seq = spinning(100.0, 9.99, np.array([0.0, 0.0, 1.0]))  # 1000 frames
    middle = trim(seq, keep=0.8)
    assert middle.num_frames == 800 and np.array_equal(middle.trans, seq.trans[100:900])
    cut = trim(seq, seconds=(0.5, 1.0))
    assert cut.num_frames == 1000 - 50 - 100 and np.array_equal(cut.trans[0], seq.trans[50])
    with pytest.raises(ValueError, match="either"):
        trim(seq)
    with pytest.raises(ValueError, match="no frame"):
        trim(seq, seconds=(6.0, 6.0))


def test_mirror_twice_is_identity_and_swaps_pairs() -> None:
    seq = synth_sequence(plan_tree(files=1, lengths="short", seed=5)[0], release="smplx", seed=5)
    once = mirror(seq, pelvis_offset=np.array([0.01, -0.2, 0.03]))
    twice = mirror(once, pelvis_offset=np.array([0.01, -0.2, 0.03]))
    for name, value in seq.arrays().items():
        assert np.allclose(getattr(twice, name), value, atol=1e-12), name
    # left hip (joint 1) takes the right hip's rotation (joint 2), reflected
    assert np.allclose(once.pose_body[:, 0], seq.pose_body[:, 1] * [1, -1, -1])
    assert np.allclose(once.pose_hand[:, :15], seq.pose_hand[:, 15:] * [1, -1, -1])
    assert np.allclose(once.pose_eye[:, 0], seq.pose_eye[:, 1] * [1, -1, -1])


def test_mirror_pairs_follow_the_kinematic_tree() -> None:
    perm = mirror_permutation(22)
    for a, b in enumerate(perm):
        name_a, name_b = BODY_JOINT_NAMES[a], BODY_JOINT_NAMES[b]
        if name_a.startswith("left_"):
            assert name_b == "right_" + name_a[5:]
        elif not name_a.startswith("right_"):
            assert a == b
    assert sorted(perm) == list(range(22))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> BodyModel:
    root = tmp_path_factory.mktemp("models")
    write_body_models(root, models=("smplh",), genders=(amasskit.Gender.MALE,))
    return BodyModel.load("smplh", "male", model_dir=root, dtype=torch.float64, dmpl=False)


def test_mirror_reflects_the_posed_body(model: BodyModel) -> None:
    """With the body model's pelvis offset, the mirrored parameters pose the mirror image (x -> -x, left <-> right)
    of a symmetric body."""
    seq = synth_sequence(plan_tree(files=1, lengths="short", seed=6)[0], release="smplh", seed=6)
    seq = seq.replace(betas=np.zeros(16))  # the synthetic template is left-right symmetric
    pelvis = model.with_shape(seq.betas).joints_rest[0].numpy()
    flipped = mirror(seq, pelvis_offset=pelvis)
    joints = model.sequence_joints(seq).numpy()
    mirrored = model.sequence_joints(flipped).numpy()
    expected = joints[:, mirror_permutation(52)] * [-1, 1, 1]
    assert np.abs(mirrored - expected).max() < 1e-6


def test_rotation_about_vertical_turns_the_body(model: BodyModel) -> None:
    seq = synth_sequence(plan_tree(files=1, lengths="short", seed=7)[0], release="smplh", seed=7)
    pelvis = model.with_shape(seq.betas).joints_rest[0].numpy()
    turned = rotate_about_vertical(seq, 0.7, pelvis_offset=pelvis)
    R = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, 0.7], dtype=torch.float64)).numpy()
    expected = model.sequence_joints(seq).numpy() @ R.T
    assert np.abs(model.sequence_joints(turned).numpy() - expected).max() < 1e-9
    assert np.allclose(np.angle(np.exp(1j * (heading(turned) - heading(seq)))), 0.7)


def test_canonicalised_sequences_start_at_the_origin_facing_the_axis(model: BodyModel) -> None:
    seq = synth_sequence(plan_tree(files=1, lengths="short", seed=8)[0], release="smplh", seed=8)
    pelvis = model.with_shape(seq.betas).joints_rest[0].numpy()
    canon = canonicalise(seq, pelvis_offset=pelvis)
    assert abs(heading(canon)[0] - math.pi / 2) < 1e-9
    start = model.sequence_joints(canon[0]).numpy()[0, 0]
    assert np.allclose(start[:2], 0.0, atol=1e-9)
    assert start[2] == pytest.approx(seq.trans[0, 2] + pelvis[2])
    # the motion itself is unchanged: distances between frames are kept
    before, after = model.sequence_joints(seq).numpy(), model.sequence_joints(canon).numpy()
    assert np.allclose(
        np.linalg.norm(np.diff(after, axis=0), axis=-1), np.linalg.norm(np.diff(before, axis=0), axis=-1)
    )


def test_pose_noise_is_small_seeded_and_keeps_the_root() -> None:
    seq = synth_sequence(plan_tree(files=1, lengths="short", seed=9)[0], release="smplh", seed=9)
    a = add_pose_noise(seq, 0.02, rng=np.random.default_rng(1))
    b = add_pose_noise(seq, 0.02, rng=np.random.default_rng(1))
    assert a == b and np.array_equal(a.root_orient, seq.root_orient)
    change = angle_between(a.pose_body.reshape(-1, 3), seq.pose_body.reshape(-1, 3))
    assert 0 < change.mean() < 0.1


def test_resampling_by_an_integer_ratio_gathers_source_frames_exactly() -> None:
    """120 -> 30 fps: every new instant is a captured one, so the output is those frames, bit for bit."""
    seq = synth_sequence(plan_tree(files=1, lengths="short", seed=4)[0], release="smplh", seed=4)
    seq = seq.replace(fps=120.0)
    out = resample(seq, 30.0)
    assert np.array_equal(out.pose_body, seq.pose_body[::4][: out.num_frames])
    assert np.array_equal(out.root_orient, seq.root_orient[::4][: out.num_frames])
    assert np.array_equal(out.trans, seq.trans[::4][: out.num_frames])
