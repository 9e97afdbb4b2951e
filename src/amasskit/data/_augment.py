"""On-the-fly augmentation in the loader, batched and seeded: turns about the vertical, left-right mirrors, pose noise.

Every random number is a function of ``(seed, epoch, window index, stream)`` (a counter-based generator: splitmix64
over those integers), so an item gets the same augmentation whichever worker loads it, in whatever batch, and a
resumed job sees the same data. The operations match :mod:`amasskit.ops` (which works on one sequence) but act on a
batch of windows in rotation-matrix form, on whatever device the batch is on.

Conventions: AMASS's world is Z-up; the posed pelvis is at ``trans + p`` with ``p`` the shape's rest pelvis. When the
batch has ``joints`` (stores prepared with a body model), ``p = joints[..., 0, :] - trans`` exactly; otherwise it is
taken as zero, as in ``prepare`` without a body model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..conventions import POSE_PARTS
from ..errors import InvalidArgumentError
from ..topology import mirror_permutation

__all__ = ["Augment", "counter_normal", "counter_uniform"]

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
    return x ^ (x >> np.uint64(31))


def counter_uniform(seed: int, epoch: int, index: np.ndarray, stream: int, count: int = 1) -> np.ndarray:
    """``(B, count)`` uniform numbers in ``[0, 1)``, each a function of (seed, epoch, index[b], stream, k) only."""
    with np.errstate(over="ignore"):
        key = _splitmix64(
            np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
            ^ _splitmix64(np.uint64(epoch) + np.uint64(stream) * np.uint64(1 << 32))
        )
        base = _splitmix64(np.asarray(index, dtype=np.uint64) ^ key)[:, None]
        bits = _splitmix64(base + np.arange(count, dtype=np.uint64)[None])
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def counter_normal(seed: int, epoch: int, index: np.ndarray, stream: int, count: int) -> np.ndarray:
    """``(B, count)`` standard normal numbers (Box-Muller over :func:`counter_uniform`)."""
    u = counter_uniform(seed, epoch, index, stream, 2 * count)
    u1, u2 = 1.0 - u[:, :count], u[:, count:]  # u1 in (0, 1]
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


def _yaw_matrices(angle: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` rotations by ``angle (B,)`` about world +Z."""
    c, s = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack([c, -s, zero, s, c, zero, zero, zero, one], dim=-1).reshape(-1, 3, 3)


@dataclass(frozen=True, kw_only=True)
class Augment:
    """What to do to each window, drawn per window from ``(seed, epoch, index)``.

    Attributes:
        rotate: turn the whole window about the world's vertical axis through the origin by an angle uniform in
            ``[-pi, pi)``.
        mirror: probability of a left-right mirror (joints swapped, rotations reflected across ``x = 0``).
        noise: standard deviation (radians) of axis-angle noise composed onto every joint rotation but the root.
        seed: the augmentation seed.
    """

    rotate: bool = False
    mirror: float = 0.0
    noise: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.mirror <= 1.0 or self.noise < 0:
            raise InvalidArgumentError("mirror is a probability and noise a standard deviation >= 0")

    @property
    def active(self) -> bool:
        return self.rotate or self.mirror > 0 or self.noise > 0

    def apply(self, batch: dict[str, torch.Tensor], index: np.ndarray, epoch: int) -> dict[str, torch.Tensor]:
        """Augment a batch whose rotation fields are rotation matrices: ``root_orient (B, L, 3, 3)``,
        ``pose_* (B, L, J, 3, 3)``, ``trans (B, L, 3)``, optional ``joints (B, L, J', 3)``. Returns a new dict."""
        out = dict(batch)
        B = len(index)
        trans = out["trans"]
        device, dtype = trans.device, trans.dtype
        pelvis = (out["joints"][..., 0, :] - trans) if "joints" in out else torch.zeros_like(trans)
        if self.mirror > 0:
            flip = torch.as_tensor(
                counter_uniform(self.seed, epoch, index, 1)[:, 0] < self.mirror, device=device
            )
            if bool(flip.any()):
                out = _mirror(out, flip, pelvis)
        if self.rotate:
            angle = torch.as_tensor(
                (counter_uniform(self.seed, epoch, index, 2)[:, 0] * 2.0 - 1.0) * math.pi,
                device=device,
                dtype=dtype,
            )
            R = _yaw_matrices(angle)  # (B, 3, 3)
            out["root_orient"] = R[:, None] @ out["root_orient"]
            world_pelvis = out["trans"] + pelvis
            out["trans"] = (R[:, None] @ world_pelvis.unsqueeze(-1)).squeeze(-1) - pelvis
            if "joints" in out:
                out["joints"] = out["joints"] @ R[:, None].transpose(-1, -2)
        if self.noise > 0:
            from ..rotations import rotvec_to_rotmat

            for k, name in enumerate(n for n in POSE_PARTS[1:] if n in out):
                value = out[name]
                count = int(np.prod(value.shape[1:-2])) * 3
                noise = counter_normal(self.seed, epoch, index, 10 + k, count) * self.noise
                noise_t = torch.as_tensor(noise, device=device, dtype=dtype).reshape(B, *value.shape[1:-2], 3)
                out[name] = value @ rotvec_to_rotmat(noise_t)
        return out


def _mirror(
    batch: dict[str, torch.Tensor], flip: torch.Tensor, pelvis: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Mirror the windows where ``flip (B,)``: rotations ``M R M`` with ``M = diag(-1, 1, 1)``, left and right
    joints swapped, the pelvis reflected."""
    out = dict(batch)
    M = torch.tensor([-1.0, 1.0, 1.0], device=flip.device, dtype=batch["trans"].dtype)

    def reflect(R: torch.Tensor) -> torch.Tensor:
        return R * M[:, None] * M[None, :]

    def where(mirrored: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        mask = flip.reshape(-1, *([1] * (original.ndim - 1)))
        return torch.where(mask, mirrored, original)

    out["root_orient"] = where(reflect(batch["root_orient"]), batch["root_orient"])
    if "pose_body" in batch:
        body_perm = torch.as_tensor(mirror_permutation(22)[1:] - 1, device=flip.device)
        out["pose_body"] = where(reflect(batch["pose_body"][:, :, body_perm]), batch["pose_body"])
    if "pose_hand" in batch:
        hand = batch["pose_hand"]
        swapped = torch.cat([hand[:, :, 15:], hand[:, :, :15]], dim=2)
        out["pose_hand"] = where(reflect(swapped), hand)
    if "pose_jaw" in batch:
        out["pose_jaw"] = where(reflect(batch["pose_jaw"]), batch["pose_jaw"])
    if "pose_eye" in batch:
        out["pose_eye"] = where(reflect(batch["pose_eye"].flip(2)), batch["pose_eye"])
    world_pelvis = batch["trans"] + pelvis
    out["trans"] = where(world_pelvis * M - pelvis, batch["trans"])
    if "joints" in batch:
        joints = batch["joints"]
        perm = torch.as_tensor(mirror_permutation(joints.shape[2]), device=flip.device)
        out["joints"] = where(joints[:, :, perm] * M, joints)
    return out
