"""Synthetic clean pose sets for the pose-prior tools (their tests and benchmarks): VPoser's recipe on synthetic
motion, without writing any file."""

from __future__ import annotations

import numpy as np

from ..rotations import quat_canonical, rotvec_to_quat
from ._motion import MotionStyle, motion_arrays

__all__ = ["PoseManifold", "synth_pose_set"]


def synth_pose_set(
    count: int, *, seed: int = 0, fps: float = 30.0, fraction: float = 0.3, hands: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` poses sampled as VPoser and Pose-NDF sample AMASS: a seeded ``fraction`` of the frames of the
    middle 80% of each sequence (synthetic motion of 10 to 100 s at ``fps``), kept in sequence order.

    Returns:
        ``quat (count, J, 4)`` float32 XYZW with ``w >= 0`` (21 body joints, or 51 with the hands) and ``sequence
        (count,)`` int32, each pose's sequence number.
    """
    rng = np.random.default_rng(seed)
    parts, owners, total, number = [], [], 0, 0
    while total < count:
        frames = int(rng.integers(int(10 * fps), int(100 * fps)))
        arrays = motion_arrays(frames, fps, MotionStyle.draw(rng))
        lo, hi = int(0.1 * frames), int(0.9 * frames)
        picked = np.sort(rng.choice(np.arange(lo, hi), size=max(1, int(fraction * (hi - lo))), replace=False))
        rotvec = arrays["pose_body"][picked]
        if hands:
            rotvec = np.concatenate([rotvec, arrays["pose_hand"][picked]], 1)
        parts.append(rotvec_to_quat(rotvec).astype(np.float32))
        owners.append(np.full(len(picked), number, dtype=np.int32))
        total += len(picked)
        number += 1
    return np.concatenate(parts)[:count], np.concatenate(owners)[:count]


class PoseManifold:
    """A known ``dim``-dimensional family of poses, for tests of pose priors where the true distance must be known.

    Pose ``p(t)`` for latent angles ``t (..., dim)``: joint ``j`` rotates by the rotation vector
    ``sum_d a_dj sin(t_d + phi_dj) n_dj`` (seeded amplitudes ``a`` in ``[0.3, 1] * amplitude`` radians, phases ``phi``,
    unit axes ``n``). The family is smooth and periodic in every latent angle, so a grid of ``per_dim ** dim``
    latents covers it evenly and the distance of any pose to it is a brute-force minimum over that grid.
    """

    def __init__(self, *, dim: int = 2, joints: int = 21, amplitude: float = 0.6, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        axes = rng.normal(size=(dim, joints, 3))
        self.axes = axes / np.linalg.norm(axes, axis=-1, keepdims=True)
        self.phase = rng.uniform(0.0, 2 * np.pi, size=(dim, joints))
        self.amplitude = amplitude * rng.uniform(0.3, 1.0, size=(dim, joints))
        self.dim, self.joints = dim, joints

    def poses(self, latent: np.ndarray) -> np.ndarray:
        """``latent (..., dim)`` radians -> ``(..., J, 4)`` float32 XYZW quaternions with ``w >= 0``."""
        t = np.asarray(latent, dtype=np.float64)[..., :, None]  # (..., D, 1)
        rotvec = (self.amplitude * np.sin(t + self.phase))[..., None] * self.axes  # (..., D, J, 3)
        return np.asarray(quat_canonical(rotvec_to_quat(rotvec.sum(-3))), dtype=np.float32)

    def grid(self, per_dim: int) -> np.ndarray:
        """``(per_dim ** dim, dim)`` evenly spaced latents over the whole family."""
        axis = np.arange(per_dim) * (2 * np.pi / per_dim)
        return np.stack(np.meshgrid(*([axis] * self.dim), indexing="ij"), -1).reshape(-1, self.dim)

    def sample(self, count: int, *, seed: int) -> np.ndarray:
        """``(count, J, 4)`` poses at uniformly random latents (seeded)."""
        rng = np.random.default_rng(seed)
        return self.poses(rng.uniform(0.0, 2 * np.pi, size=(count, self.dim)))
