"""The perturbation schemes against their definitions, and their seeding."""

from __future__ import annotations

import numpy as np
import pytest

from amasskit.errors import InvalidArgumentError
from amasskit.prior import NoiseConfig, perturb, pose_distance
from amasskit.prior.poses._noise import _posendf, uniforms, words_per_sample
from amasskit.rotations import quat_product
from amasskit.synth import synth_pose_set


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return synth_pose_set(400, seed=1)[0]


@pytest.mark.parametrize("scheme", ["posendf", "nrdf", "haar", "mixture"])
def test_the_same_bytes_however_the_poses_are_chunked(clean: np.ndarray, scheme: str) -> None:
    whole = perturb(clean, samples=3, noise=NoiseConfig(scheme), seed=11)
    parts = [perturb(clean[a:b], samples=3, noise=NoiseConfig(scheme), seed=11, first_pose=a)
             for a, b in [(0, 1), (1, 150), (150, 400)]]  # fmt: skip
    for k in range(3):
        assert np.concatenate([p[k] for p in parts]).tobytes() == whole[k].tobytes()
    other = perturb(clean, samples=3, noise=NoiseConfig(scheme), seed=12)[0]
    assert not np.array_equal(other, whole[0])
    assert whole[0].dtype == np.float32 and np.all(whole[0][..., 3] >= 0)
    assert np.allclose(np.linalg.norm(whole[0], axis=-1), 1.0, atol=1e-6)


def test_uniforms_are_uniform_and_independent() -> None:
    u = uniforms(3, 0, 200_000, 4)
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / u.size)
    assert abs(u.var() - 1 / 12) < 0.002
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 4 / np.sqrt(len(u))
    assert abs(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]) < 4 / np.sqrt(len(u))


def test_posendf_noise_is_symmetric_and_drawn_per_joint_and_sample() -> None:
    J = 21
    q = np.tile(np.array([0.0, 0.0, 0.0, 1.0]), (20_000, J, 1))
    u = uniforms(0, 0, 20_000, words_per_sample(J))
    offsets = (_posendf(q, u, np.full(20_000, 0.5)) - q) / 0.5  # the draws, before normalising
    assert offsets.min() >= -1 and offsets.max() < 1
    assert np.all(
        np.abs(offsets.mean(0)) < 4 * np.sqrt(1 / 3 / 20_000)
    )  # zero mean: symmetric, every component
    assert abs(offsets.var() - 1 / 3) < 0.01  # uniform on [-1, 1)
    flat = offsets.reshape(20_000, -1)
    assert abs(np.corrcoef(flat[:, 0], flat[:, 5])[0, 1]) < 0.03  # joints independent
    # samples of one level do not share one offset (Pose-NDF broadcasts one draw over a level)
    noisy, _, sigma = perturb(q[:2, :J].astype(np.float32), samples=10, noise=NoiseConfig("posendf"), seed=0)
    level = sigma[0] == sigma[0, 0]
    assert not np.allclose(noisy[0, level][0], noisy[1, level][0])


def test_nrdf_noise_turns_the_pose_by_a_half_normal_angle() -> None:
    rng = np.random.default_rng(0)
    q = rng.normal(size=(20_000, 21, 4))
    q = (q / np.linalg.norm(q, axis=-1, keepdims=True)).astype(np.float32)
    noisy, scheme, sigma = perturb(q, samples=1, noise=NoiseConfig("nrdf", sigmas={"nrdf": (0.5,)}), seed=4)
    assert np.all(scheme == 1) and np.all(sigma == 0.5)
    # the geodesic distance (half-angles) to the source is A / 2 with A = sigma |g|: 2 d / sigma is half-normal
    ratio = 2 * pose_distance(noisy[:, 0], q, metric="geodesic") / 0.5
    assert abs(ratio.mean() - np.sqrt(2 / np.pi)) < 4 * np.sqrt((1 - 2 / np.pi) / len(ratio)) + 1e-3
    assert abs((ratio**2).mean() - 1.0) < 0.05
    # the angle is split over the joints: no single joint takes it all
    per_joint = np.arccos(np.minimum(1, np.abs((noisy[:, 0].astype(np.float64) * q).sum(-1))))
    assert np.median(per_joint.max(1) / np.maximum(per_joint.sum(1), 1e-12)) < 0.5


def test_haar_noise_is_uniform_on_rotations() -> None:
    identity = np.tile(np.array([0.0, 0.0, 0.0, 1.0], np.float32), (20_000, 1, 1))
    noisy, _, _ = perturb(identity, samples=1, noise=NoiseConfig("haar"), seed=2)
    rotation_angle = 2 * np.arccos(np.minimum(1.0, np.abs(noisy[:, 0, 0, 3].astype(np.float64))))
    # Haar measure on SO(3): the angle has density (1 - cos t) / pi on [0, pi], mean pi / 2 + 2 / pi
    assert abs(rotation_angle.mean() - (np.pi / 2 + 2 / np.pi)) < 0.02
    assert abs(np.mean(rotation_angle < np.pi / 2) - (np.pi / 2 - 1) / np.pi) < 0.01
    # relative to any source it is Haar too
    turned = quat_product(noisy[:, 0, 0].astype(np.float64), np.array([0.3, 0.1, -0.2, 0.927]))
    assert abs(2 * np.arccos(np.minimum(1, np.abs(turned[:, 3]))).mean() - (np.pi / 2 + 2 / np.pi)) < 0.02


def test_mixture_follows_its_weights(clean: np.ndarray) -> None:
    noise = NoiseConfig("mixture", weights={"posendf": 0.2, "nrdf": 0.7, "haar": 0.1})
    _, scheme, _ = perturb(clean, samples=50, noise=noise, seed=3)
    shares = np.bincount(scheme.reshape(-1), minlength=3) / scheme.size
    assert np.allclose(shares, [0.2, 0.7, 0.1], atol=0.01)


def test_bad_configs_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="noise must be"):
        NoiseConfig("gaussian")
    with pytest.raises(InvalidArgumentError, match="sigmas"):
        NoiseConfig("nrdf", sigmas={"nrdf": (-1.0,)})
    with pytest.raises(InvalidArgumentError, match="weights"):
        NoiseConfig("mixture", weights={"posendf": 0.0, "nrdf": 0.0})
    with pytest.raises(InvalidArgumentError, match="samples"):
        perturb(np.zeros((2, 21, 4), np.float32), samples=0, noise=NoiseConfig(), seed=0)
