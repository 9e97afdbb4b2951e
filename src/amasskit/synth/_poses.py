"""Synthetic clean pose sets for the pose-prior tools (their tests and benchmarks): VPoser's recipe on synthetic
motion, without writing any file."""

from __future__ import annotations

import numpy as np

from ..rotations import rotvec_to_quat
from ._motion import MotionStyle, motion_arrays

__all__ = ["synth_pose_set"]


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
