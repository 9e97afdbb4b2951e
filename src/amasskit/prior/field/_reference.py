"""Reference fields: exact distances, with :class:`~amasskit.prior.DistanceField`'s interface, for tests,
benchmarks and evaluation of what uses a prior.

* :class:`ExactField` - the distance to a (small) set of poses, by brute force.
* :class:`ManifoldField` - the distance to a :class:`~amasskit.synth.PoseManifold`, the whole continuous family.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional

from ...errors import InvalidArgumentError
from ..poses import METRICS, joint_terms
from ._network import DistanceFieldConfig

__all__ = ["ExactField", "ManifoldField"]


class ExactField(nn.Module):
    """The exact distance of poses to a (small) set of poses, by brute force, as a differentiable module: a reference
    field with the same interface as :class:`DistanceField` (projection, tests, benchmarks).

    ``forward(quat (..., J, 4)) -> (...)``: ``min_p sum_j acos |<q_j, x_pj>|`` (``geodesic``) or ``sum_j 1 - |<q_j,
    x_pj>|`` (``posendf``) over the set's poses ``x (P, J, 4)``, in float64 (``acos`` is clamped just below 1 so its
    gradient stays finite). Costs ``B P J`` per call: sets of thousands of poses, not millions.
    """

    poses: torch.Tensor

    def __init__(self, poses: torch.Tensor, *, metric: str = "geodesic", block: int = 4096) -> None:
        super().__init__()
        if metric not in METRICS:
            raise InvalidArgumentError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        poses = torch.as_tensor(poses, dtype=torch.float64)
        if poses.ndim != 3 or poses.shape[-1] != 4 or len(poses) == 0:
            raise InvalidArgumentError(f"poses must be a non-empty (P, J, 4) array, got {tuple(poses.shape)}")
        self.register_buffer("poses", functional.normalize(poses, dim=-1))
        self.metric, self.block = metric, block
        self.config = DistanceFieldConfig(joints=poses.shape[1], metric=metric, reduction="sum")

    def forward(self, quat: torch.Tensor) -> torch.Tensor:
        lead, J = quat.shape[:-2], quat.shape[-2]
        q = functional.normalize(quat.reshape(-1, J, 4).to(torch.float64), dim=-1)
        # the nearest pose is searched without gradients; the distance to it carries them (the gradient of a minimum
        # is its smallest term's, so autograd through the whole B x P x J search, 36 ms a backward pass for 32
        # queries against 9,216 poses, gave the same gradient)
        with torch.no_grad():
            best = torch.full((len(q),), torch.inf, dtype=torch.float64, device=q.device)
            index = torch.zeros(len(q), dtype=torch.long, device=q.device)
            for start in range(0, len(self.poses), self.block):
                c = torch.einsum("bjc,pjc->bpj", q, self.poses[start : start + self.block]).abs()
                d, at = joint_terms(c, self.metric).sum(-1).min(1)
                better = d < best
                best, index = torch.where(better, d, best), torch.where(better, at + start, index)
        nearest = self.poses[index]  # (B, J, 4)
        return joint_terms((q * nearest).sum(-1).abs(), self.metric).sum(-1).reshape(lead)


class ManifoldField(nn.Module):
    """The exact distance of poses to a :class:`~amasskit.synth.PoseManifold` (the whole continuous family, not a
    sample of it), as a differentiable module with :class:`DistanceField`'s interface: for tests and benchmarks of
    what uses a prior, where a grid of poses (:class:`ExactField`) would snap poses to its grid points.

    ``forward(quat (..., J, 4)) -> (...)``: ``min_t sum_j term(q_j, p_j(t))`` with ``term`` the metric's (``posendf``
    ``1 - |<q, x>|``; ``geodesic`` ``acos |<q, x>|``). The minimising latent ``t*`` is found without gradients (the
    best of a ``grid ** dim`` grid, then ``refine`` gradient steps in ``t`` with per-pose backtracking); the value at
    ``p(t*)`` is differentiable in ``q`` (the envelope theorem: at a minimum, ``t*``'s own change does not move the
    value to first order). Float64.
    """

    axes: torch.Tensor
    phase: torch.Tensor
    amplitude: torch.Tensor
    latents: torch.Tensor

    def __init__(self, manifold: Any, *, metric: str = "posendf", grid: int = 32, refine: int = 30) -> None:
        super().__init__()
        if metric not in METRICS:
            raise InvalidArgumentError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        self.register_buffer("axes", torch.as_tensor(manifold.axes, dtype=torch.float64))  # (D, J, 3)
        self.register_buffer("phase", torch.as_tensor(manifold.phase, dtype=torch.float64))  # (D, J)
        self.register_buffer("amplitude", torch.as_tensor(manifold.amplitude, dtype=torch.float64))
        self.register_buffer("latents", torch.as_tensor(manifold.grid(grid), dtype=torch.float64))
        self.metric, self.refine = metric, refine
        self.config = DistanceFieldConfig(joints=int(manifold.joints), metric=metric, reduction="sum")

    def poses(self, latent: torch.Tensor) -> torch.Tensor:
        """``latent (..., D)`` -> ``(..., J, 4)`` XYZW (as :meth:`PoseManifold.poses`, differentiable)."""
        from ...rotations import rotvec_to_quat

        s = self.amplitude * torch.sin(latent.unsqueeze(-1) + self.phase)  # (..., D, J)
        return rotvec_to_quat((s.unsqueeze(-1) * self.axes).sum(-3))

    def _distance(self, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return joint_terms((q * x).sum(-1).abs(), self.metric).sum(-1)

    def forward(self, quat: torch.Tensor) -> torch.Tensor:
        lead, J = quat.shape[:-2], quat.shape[-2]
        q = functional.normalize(quat.reshape(-1, J, 4).to(torch.float64), dim=-1)
        with torch.no_grad():
            grid_poses = self.poses(self.latents)  # (G, J, 4)
            d = (1 - torch.einsum("bjc,gjc->bgj", q, grid_poses).abs()).sum(-1)
            t = self.latents[d.argmin(1)].clone()  # (B, D)
            step = torch.full((len(q),), 0.5, dtype=torch.float64)
        for _ in range(self.refine):
            with torch.enable_grad():
                tt = t.detach().requires_grad_(True)
                value = self._distance(q.detach(), self.poses(tt))
                (grad,) = torch.autograd.grad(value.sum(), tt)
            with torch.no_grad():
                trial = t - step[:, None] * grad
                better = self._distance(q, self.poses(trial)) < value
                t = torch.where(better[:, None], trial, t)
                step = torch.where(better, step * 1.5, step * 0.5)
        return self._distance(q, self.poses(t.detach())).reshape(lead)
