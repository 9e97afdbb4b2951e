"""Fitting a body with a pose prior: the differentiable body (:class:`Kinematics`), the fitted result
(:class:`BodyFit`) and the machinery every fit shares (Adam with a schedule, starting poses, a rigid first guess, the
field held frozen).

Every fit minimises a weighted sum of terms over the body's parameters with Adam (seeded, deterministic on CPU):

* ``data``: squared distances ``sum_j m_j |J_j - O_j|^2`` (metres^2) between the body's joints ``J`` and the
  observed ``O`` (``m_j``: 1 where observed), a mean over frames; for 2D keypoints a robust Geman-McClure term on
  the reprojection (:mod:`._keypoints`).
* ``temporal``: ``sum_j |J_{t+1, j} - J_{t, j}|^2``, a mean over consecutive frames (motion only).
* ``betas``: ``|beta|^2`` (with a body model; the built-in skeleton has no shape).
* ``prior``: ``d(q)^2``, the squared distance of the body pose to the manifold by the field, a mean over frames;
  left out without a field (the no-prior baseline) or at weight 0.

The body is :class:`Kinematics`: a body model's joints (with shape) or, without one, amasskit's built-in skeleton
(:mod:`amasskit.viz._skeleton`, approximate bone lengths, no shape). Its output is the 22 body joints (SMPL order).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import torch

from ...body import forward_kinematics, tree_levels
from ...errors import InvalidArgumentError
from ...rotations import quat_to_rotvec, rotmat_to_rotvec, rotvec_to_quat, rotvec_to_rotmat
from ...topology import BODY_PARENTS
from ..field import field_value, project_to_manifold

logger = logging.getLogger(__name__)

__all__ = [
    "NUM_JOINTS",
    "BodyFit",
    "FrozenField",
    "Kinematics",
    "as_tensor",
    "best_first",
    "field_dtype",
    "fit_result",
    "kabsch",
    "observed_weights",
    "prior_distance",
    "rigid_start",
    "run_adam",
    "start_poses",
    "step_counter",
]


NUM_JOINTS: Final[int] = 22  # the body joints a fit sees (root + 21)


class Kinematics(torch.nn.Module):
    """The 22 body joints as a differentiable function of the body's parameters.

    Args:
        model: a :class:`~amasskit.body.BodyModel` (its joints and, for ``vertices``, its mesh), or None for
            amasskit's built-in skeleton (no shape; ``betas`` are ignored).
        num_betas: shape coefficients fitted with a body model (at most the model's).

    ``forward(root_orient (..., 3), pose_body (..., 21, 3), trans (..., 3), betas (..., B) | None)`` returns
    ``(..., 22, 3)`` joints in the frame of ``root_orient`` and ``trans`` (AMASS: Z-up world), rotations as rotation
    vectors.
    """

    rest: torch.Tensor

    def __init__(self, model: Any = None, *, num_betas: int = 10, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.model = model
        if model is None:
            from ...viz import SKELETON_REST

            self.register_buffer("rest", torch.tensor(SKELETON_REST[:NUM_JOINTS], dtype=dtype))
            self.num_betas = 0
        else:
            self.register_buffer("rest", model.joint_template[:NUM_JOINTS].to(dtype))
            self.num_betas = min(num_betas, int(model.num_betas))
        self.levels = tree_levels(BODY_PARENTS)

    @property
    def dtype(self) -> torch.dtype:
        return self.rest.dtype

    @property
    def device(self) -> torch.device:
        return self.rest.device

    def forward(
        self,
        root_orient: torch.Tensor,
        pose_body: torch.Tensor,
        trans: torch.Tensor,
        betas: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.model is not None:
            shaped = self.model.with_shape(betas if betas is not None and self.num_betas else None)
            posed = shaped.with_pose(root_orient=root_orient, pose_body=pose_body, trans=trans)
            return posed.joints[..., :NUM_JOINTS, :]
        rel = rotvec_to_rotmat(torch.cat([root_orient.unsqueeze(-2), pose_body], dim=-2))
        _, joints = forward_kinematics(rel, self.rest, self.levels)
        return joints + trans.unsqueeze(-2)

    def vertices(
        self,
        root_orient: torch.Tensor,
        pose_body: torch.Tensor,
        trans: torch.Tensor,
        betas: torch.Tensor | None,
    ) -> torch.Tensor | None:
        """``(..., V, 3)`` the body model's vertices; None for the skeleton."""
        if self.model is None:
            return None
        shaped = self.model.with_shape(betas if betas is not None and self.num_betas else None)
        return shaped.with_pose(root_orient=root_orient, pose_body=pose_body, trans=trans).vertices


def field_dtype(field: torch.nn.Module) -> torch.dtype:
    for tensor in (*field.parameters(), *field.buffers()):
        return tensor.dtype
    return torch.float32


def prior_distance(field: torch.nn.Module, pose_body: torch.Tensor) -> torch.Tensor:
    """``(...)`` the field's distance of ``pose_body (..., 21, 3)`` rotation vectors (hands at rest for a field of
    51 joints), differentiable, in ``pose_body``'s dtype."""
    quat = rotvec_to_quat(pose_body)
    joints = getattr(getattr(field, "config", None), "joints", 21)
    if joints == 51:
        rest = torch.zeros(*quat.shape[:-2], 30, 4, dtype=quat.dtype, device=quat.device)
        rest[..., 3] = 1
        quat = torch.cat([quat, rest], dim=-2)
    elif joints != 21:
        raise InvalidArgumentError(f"a prior over {joints} joints cannot judge a body pose (21 or 51)")
    return field_value(field, quat.to(field_dtype(field))).to(pose_body.dtype)


def kabsch(
    source: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotation ``R (..., 3, 3)`` and translation ``t (..., 3)`` minimising ``sum_j w_j |R s_j + t - o_j|^2``
    for ``source``, ``target (..., J, 3)`` and ``weight (..., J)`` (a proper rotation, det +1)."""
    w = weight / weight.sum(-1, keepdim=True).clamp_min(1e-12)
    mu_s = (w.unsqueeze(-1) * source).sum(-2)
    mu_t = (w.unsqueeze(-1) * target).sum(-2)
    cov = ((target - mu_t.unsqueeze(-2)) * w.unsqueeze(-1)).transpose(-1, -2) @ (source - mu_s.unsqueeze(-2))
    u, _, vh = torch.linalg.svd(cov)
    sign = torch.sign(torch.linalg.det(u @ vh))
    fix = torch.ones(*sign.shape, 3, dtype=source.dtype, device=source.device)
    fix[..., 2] = torch.where(sign == 0, torch.ones_like(sign), sign)
    rot = u @ torch.diag_embed(fix) @ vh
    return rot, mu_t - (rot @ mu_s.unsqueeze(-1)).squeeze(-1)


@dataclass
class BodyFit:
    """A fitted body (leading shape ``(...)``: frames for motion; ``(N, K)`` observations x hypotheses for a fit,
    hypotheses sorted by final loss, best first).

    Attributes:
        root_orient ``(..., 3)``, pose_body ``(..., 21, 3)``, trans ``(..., 3)`` rotation vectors and metres;
        betas ``(..., B)`` (B = 0 for the skeleton); joints ``(..., 22, 3)``; distance ``(...)`` by the field (NaN
        without one); loss ``(...)`` each fit's final weighted objective (a motion: one value, the sum of its final
        terms unweighted); terms the final value of each term (means over the fits).
    """

    root_orient: np.ndarray
    pose_body: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    joints: np.ndarray
    distance: np.ndarray
    loss: np.ndarray
    terms: dict[str, float] = field(default_factory=dict)


def run_adam(
    params: Sequence[torch.Tensor],
    objective: Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]],
    *,
    steps: int,
    lr: float,
    final_lr: float | None = None,
    tick: Callable[[], None] | None = None,
) -> dict[str, torch.Tensor]:
    """``steps`` of Adam on ``objective`` (which returns the summed loss to minimise and its terms); the rate decays
    from ``lr`` to ``final_lr`` along a cosine when given; ``tick`` is called after every step. Returns the terms at
    the last step."""
    optimiser = torch.optim.Adam(params, lr=lr)
    terms: dict[str, torch.Tensor] = {}
    for step in range(steps):
        if final_lr is not None:
            for group in optimiser.param_groups:
                group["lr"] = final_lr + 0.5 * (lr - final_lr) * (
                    1 + math.cos(math.pi * step / max(1, steps - 1))
                )
        optimiser.zero_grad(set_to_none=True)
        loss, terms = objective()
        loss.backward()
        optimiser.step()
        if tick is not None:
            tick()
    return terms


def step_counter(total: int, progress: Callable[[int, int], None] | None) -> Callable[[], None] | None:
    """A counter of optimiser steps that reports ``progress(done, total)`` (None without a callback)."""
    if progress is None:
        return None
    done = [0]

    def tick() -> None:
        done[0] += 1
        progress(done[0], total)

    return tick


def as_tensor(x: Any, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64)).to(device=device, dtype=dtype)


def observed_weights(mask: np.ndarray | None, obs: torch.Tensor) -> torch.Tensor:
    """``(..., 22)`` weights: the mask (default: every joint observed), 0 where the observation is not finite."""
    finite = torch.isfinite(obs).all(-1)
    weight = finite.to(obs.dtype)
    if mask is not None:
        m = torch.as_tensor(np.asarray(mask)).to(device=obs.device, dtype=obs.dtype)
        if m.shape != finite.shape:
            raise InvalidArgumentError(f"mask must be {tuple(finite.shape)}, got {tuple(m.shape)}")
        weight = weight * m
    obs.nan_to_num_(0.0, posinf=0.0, neginf=0.0)
    return weight


class FrozenField:
    """Evaluation mode for the field during a fit (and its parameters out of autograd), restored after."""

    def __init__(self, field: torch.nn.Module | None) -> None:
        self.field = field
        self.state: tuple[bool, list[bool]] | None = None

    def __enter__(self) -> None:
        if self.field is not None:
            params = list(self.field.parameters())
            self.state = (self.field.training, [p.requires_grad for p in params])
            self.field.eval()
            for p in params:
                p.requires_grad_(False)

    def __exit__(self, *_: object) -> None:
        if self.field is not None and self.state is not None:
            self.field.train(self.state[0])
            for p, flag in zip(self.field.parameters(), self.state[1], strict=True):
                p.requires_grad_(flag)


def fit_result(
    field: torch.nn.Module | None,
    kinematics: Kinematics,
    root: torch.Tensor,
    pose: torch.Tensor,
    trans: torch.Tensor,
    betas: torch.Tensor,
    terms: Mapping[str, torch.Tensor],
    loss: torch.Tensor | None = None,
) -> BodyFit:
    with torch.no_grad():
        joints = kinematics(root, pose, trans, betas if kinematics.num_betas else None)
        distance = (
            prior_distance(field, pose)
            if field is not None
            else torch.full(pose.shape[:-2], float("nan"), device=pose.device)
        )
    total = sum(float(v.detach()) for v in terms.values())
    return BodyFit(
        root_orient=root.detach().double().cpu().numpy(),
        pose_body=pose.detach().double().cpu().numpy(),
        trans=trans.detach().double().cpu().numpy(),
        betas=betas.detach().double().cpu().numpy(),
        joints=joints.double().cpu().numpy(),
        distance=distance.double().cpu().numpy(),
        loss=np.asarray(total if loss is None else loss.detach().double().cpu().numpy()),
        terms={k: float(v.detach()) for k, v in terms.items()},
    )


def start_poses(
    field: torch.nn.Module | None,
    count: int,
    hypotheses: int,
    *,
    seed: int,
    noise: float,
    dtype: torch.dtype,
    device: torch.device | None = None,
) -> torch.Tensor:
    """``(count, hypotheses, 21, 3)`` starting body poses: the rest pose first, then seeded noisy copies of it
    (``noise`` radians a component), projected onto the prior's manifold when there is one."""
    generator = torch.Generator().manual_seed(seed)
    rotvec = torch.randn(count, hypotheses, 21, 3, generator=generator, dtype=torch.float64) * noise
    rotvec[:, 0] = 0
    if field is not None and hypotheses > 1:
        with FrozenField(field):
            quat = rotvec_to_quat(rotvec[:, 1:]).to(device=device, dtype=field_dtype(field))
            tol = 1e-3 * (21 if getattr(field.config, "reduction", "sum") == "sum" else 1)
            projected = project_to_manifold(field, quat.reshape(-1, 21, 4), tol=tol, max_steps=30).quat
            rotvec[:, 1:] = quat_to_rotvec(projected.detach().double().cpu()).reshape(
                count, hypotheses - 1, 21, 3
            )
    return rotvec.to(device=device, dtype=dtype)


def rigid_start(
    kinematics: Kinematics, obs: torch.Tensor, weight: torch.Tensor, betas: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``root_orient (N, 3)`` and ``trans (N, 3)`` placing the rest pose's joints onto the observed ones (a weighted
    Kabsch fit on every observed joint; the identity where fewer than three are observed)."""
    N = obs.shape[0]
    zero = torch.zeros(N, 3, dtype=obs.dtype, device=obs.device)
    with torch.no_grad():
        rest = kinematics(zero, torch.zeros(N, 21, 3, dtype=obs.dtype, device=obs.device), zero, betas)
    rot, t = kabsch(rest.double(), obs.double(), weight.double())
    enough = (weight > 0).sum(-1) >= 3
    rot = torch.where(enough[:, None, None], rot, torch.eye(3, dtype=rot.dtype, device=rot.device))
    root_orient = rotmat_to_rotvec(rot)
    # the root rotates about the rest pelvis p0: joints = R (x - p0) + p0 + trans, so trans = R p0 + t - p0
    p0 = rest[:, 0].double()
    trans = (rot @ p0.unsqueeze(-1)).squeeze(-1) + t - p0
    trans = torch.where(
        enough[:, None],
        trans,
        (obs.double() * weight.double().unsqueeze(-1)).sum(-2)
        / weight.double().sum(-1, keepdim=True).clamp_min(1)
        - p0,
    )
    return root_orient.to(obs.dtype), trans.to(obs.dtype)


def best_first(fit: BodyFit) -> BodyFit:
    """Each observation's hypotheses ordered by loss, best first."""
    order = np.argsort(fit.loss, axis=1, kind="stable")

    def take(a: np.ndarray) -> np.ndarray:
        index = order.reshape(order.shape + (1,) * (a.ndim - 2))
        return np.take_along_axis(a, index, axis=1)

    return replace(
        fit,
        root_orient=take(fit.root_orient),
        pose_body=take(fit.pose_body),
        trans=take(fit.trans),
        betas=take(fit.betas),
        joints=take(fit.joints),
        distance=take(fit.distance),
        loss=take(fit.loss),
    )
