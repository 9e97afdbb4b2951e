"""Fitting bodies with a pose prior: motion denoising, inverse kinematics from 3D joints (any subset missing, several
hypotheses), and SMPLify-style fitting to 2D keypoints.

Every fit minimises a weighted sum of terms over the body's parameters with Adam (seeded, deterministic on CPU):

* ``data``: squared distances ``sum_j m_j |J_j - O_j|^2`` (metres^2) between the body's joints ``J`` and the
  observed ``O`` (``m_j``: 1 where observed), a mean over frames; for 2D keypoints a robust Geman-McClure term on
  the reprojection (below).
* ``temporal``: ``sum_j |J_{t+1, j} - J_{t, j}|^2``, a mean over consecutive frames (motion only).
* ``betas``: ``|beta|^2`` (with a body model; the built-in skeleton has no shape).
* ``prior``: ``d(q)^2``, the squared distance of the body pose to the manifold by the field, a mean over frames;
  left out without a field (the no-prior baseline) or at weight 0.

The body is :class:`Kinematics`: a body model's joints (with shape) or, without one, amasskit's built-in skeleton
(:mod:`amasskit.viz._skeleton`, approximate bone lengths, no shape). Its output is the 22 body joints (SMPL order).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from .._util.paths import user_path
from ..body import forward_kinematics, tree_levels
from ..errors import InvalidArgumentError, KeypointFileError
from ..rotations import quat_to_rotvec, rotmat_to_rotvec, rotvec_to_quat, rotvec_to_rotmat
from ..topology import BODY_PARENTS
from ._model import field_value
from ._project import project

logger = logging.getLogger(__name__)

__all__ = [
    "BODY25_TO_SMPL",
    "DENOISE_PRESETS",
    "BodyFit",
    "DenoiseSchedule",
    "Kinematics",
    "denoise_motion",
    "fit_joints",
    "fit_keypoints",
    "intrinsics_matrix",
    "keypoints_from_joints",
    "prior_distance",
    "project_points",
    "read_openpose",
    "write_openpose",
]

NUM_JOINTS: Final[int] = 22  # the body joints a fit sees (root + 21)

#: OpenPose BODY_25 keypoint -> (SMPL body joint, weight). Nose -> head and the big toes -> the feet are
#: approximations, and OpenPose's hips sit wider than SMPL's hip joints, so they count half. Eyes, ears, small toes
#: and heels have no body joint and are not used.
BODY25_TO_SMPL: Final[dict[int, tuple[int, float]]] = {
    0: (15, 0.5), 1: (12, 1.0), 2: (17, 1.0), 3: (19, 1.0), 4: (21, 1.0), 5: (16, 1.0), 6: (18, 1.0),
    7: (20, 1.0), 8: (0, 0.5), 9: (2, 0.5), 10: (5, 1.0), 11: (8, 1.0), 12: (1, 0.5), 13: (4, 1.0),
    14: (7, 1.0), 19: (10, 0.5), 22: (11, 0.5),
}  # fmt: skip
_TORSO_BODY25: Final[tuple[int, ...]] = (2, 5, 9, 12)  # shoulders and hips: the camera stage's keypoints


# ------------------------------------------------------------------------------------------------ the body


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
            from ..viz import SKELETON_REST

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


def _field_dtype(field: torch.nn.Module) -> torch.dtype:
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
    return field_value(field, quat.to(_field_dtype(field))).to(pose_body.dtype)


def _kabsch(
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


# ------------------------------------------------------------------------------------------------ fitting core


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


def _adam(
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


def _ticker(total: int, progress: Callable[[int, int], None] | None) -> Callable[[], None] | None:
    """A counter of optimiser steps that reports ``progress(done, total)`` (None without a callback)."""
    if progress is None:
        return None
    done = [0]

    def tick() -> None:
        done[0] += 1
        progress(done[0], total)

    return tick


def _as_tensor(x: Any, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64)).to(device=device, dtype=dtype)


# ------------------------------------------------------------------------------------------------ denoising


@dataclass(frozen=True)
class DenoiseSchedule:
    """A motion-denoising schedule: ``len(data)`` rounds of ``steps`` Adam steps at ``lr``, each round with its own
    weights (the four tuples have one weight per round). ``posendf()``: Pose-NDF's (after HuMoR): 5 rounds of 50
    steps at 0.03; temporal ``10 (1 + it)``, data ``100 / (1 + it^2)``, betas 10, prior ``1e5 (1 + it)``."""

    lr: float = 0.03
    steps: int = 50
    data: tuple[float, ...] = ()
    temporal: tuple[float, ...] = ()
    betas: tuple[float, ...] = ()
    prior: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        rounds = {len(self.data), len(self.temporal), len(self.betas), len(self.prior)}
        if len(rounds) != 1 or 0 in rounds:
            raise InvalidArgumentError(
                "a schedule needs one weight per round for data, temporal, betas and prior"
            )
        if not (self.lr > 0 and self.steps >= 1):
            raise InvalidArgumentError(f"lr must be > 0 and steps >= 1, got {self.lr} and {self.steps}")

    @classmethod
    def posendf(cls, rounds: int = 5, steps: int = 50, lr: float = 0.03) -> DenoiseSchedule:
        its = range(rounds)
        return cls(lr=lr, steps=steps, data=tuple(100 / (1 + i * i) for i in its),
                   temporal=tuple(10.0 * (1 + i) for i in its), betas=(10.0,) * rounds,
                   prior=tuple(1e5 * (1 + i) for i in its))  # fmt: skip

    def scaled(self, *, prior: float = 1.0) -> DenoiseSchedule:
        """This schedule with the prior's weights times ``prior`` (0: the no-prior baseline)."""
        return replace(self, prior=tuple(w * prior for w in self.prior))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DenoiseSchedule:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - {"preset", "rounds"}
        if unknown:
            raise InvalidArgumentError(f"unknown schedule keys: {', '.join(sorted(unknown))}")
        base = DENOISE_PRESETS[data.get("preset", "posendf")](int(data.get("rounds", 5)))
        values: dict[str, Any] = {k: tuple(float(x) for x in v) if isinstance(v, list | tuple) else v
                  for k, v in data.items() if k in known}  # fmt: skip
        return replace(base, **values)


DENOISE_PRESETS: Final[dict[str, Callable[[int], DenoiseSchedule]]] = {"posendf": DenoiseSchedule.posendf}


def denoise_motion(
    field: torch.nn.Module | None,
    observed: np.ndarray,
    *,
    kinematics: Kinematics,
    init: Mapping[str, np.ndarray],
    schedule: DenoiseSchedule | None = None,
    mask: np.ndarray | None = None,
    warmup: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> BodyFit:
    """Denoise a motion: fit the body to the observed joints ``observed (T, 22, 3)`` (metres, the frame of
    ``init``) under the data, temporal, shape and prior terms (module docstring), round by round.

    Args:
        field: the prior (None: no prior term; the baseline).
        kinematics: the body.
        init: ``root_orient (T, 3)``, ``pose_body (T, 21, 3)``, ``trans (T, 3)``, optional ``betas (B,)``: where
            the fit starts (a noisy motion's own parameters, or a neutral start).
        schedule: the rounds and weights (default :meth:`DenoiseSchedule.posendf`).
        mask: ``(T, 22)`` observed joints (default all).
        warmup: steps without the prior (the first round's other weights) before the schedule: from a start far
            from the answer (the rest pose), so that the prior's pull cannot hold the poses near the start.
        progress: called as ``progress(step, steps)`` after every optimiser step.

    Returns:
        a :class:`BodyFit` with leading shape ``(T,)`` (one ``betas`` for the clip, repeated per frame).

    Raises:
        InvalidArgumentError: shapes that do not match.
    """
    schedule = schedule or DenoiseSchedule.posendf()
    dtype = kinematics.dtype
    dev = kinematics.device
    obs = _as_tensor(observed, dtype, dev)
    T = obs.shape[0]
    if obs.shape != (T, NUM_JOINTS, 3) or T < 2:
        raise InvalidArgumentError(f"observed joints must be (T >= 2, 22, 3), got {tuple(obs.shape)}")
    weight = _mask(mask, obs)
    root = _as_tensor(init["root_orient"], dtype, dev).reshape(T, 3).clone().requires_grad_(True)
    pose = _as_tensor(init["pose_body"], dtype, dev).reshape(T, 21, 3).clone().requires_grad_(True)
    trans = _as_tensor(init["trans"], dtype, dev).reshape(T, 3).clone().requires_grad_(True)
    betas = torch.zeros(kinematics.num_betas, dtype=dtype, device=dev)
    if init.get("betas") is not None and kinematics.num_betas:
        given = _as_tensor(init["betas"], dtype, dev).reshape(-1)[: kinematics.num_betas]
        betas[: len(given)] = given
    betas.requires_grad_(True)
    params = [root, pose, trans] + ([betas] if kinematics.num_betas else [])
    use_prior = field is not None and any(w > 0 for w in schedule.prior)

    def terms_at(r: int, prior: bool = True) -> Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        def objective() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            joints = kinematics(root, pose, trans, betas if kinematics.num_betas else None)
            terms = {
                "data": ((joints - obs) ** 2).sum(-1).mul(weight).sum(-1).mean(),
                "temporal": ((joints[1:] - joints[:-1]) ** 2).sum(-1).sum(-1).mean(),
                "betas": (betas**2).sum(),
            }
            if use_prior and prior:
                assert field is not None
                terms["prior"] = (prior_distance(field, pose) ** 2).mean()
            weights = {"data": schedule.data[r], "temporal": schedule.temporal[r], "betas": schedule.betas[r],
                       "prior": schedule.prior[r]}  # fmt: skip
            return sum(
                (weights[k] * v for k, v in terms.items()), torch.zeros((), dtype=dtype, device=dev)
            ), terms

        return objective

    terms: dict[str, torch.Tensor] = {}
    tick = _ticker(warmup + len(schedule.data) * schedule.steps, progress)
    with _FieldFrozen(field):
        if warmup:
            _adam(params, terms_at(0, prior=False), steps=warmup, lr=schedule.lr, tick=tick)
        for r in range(len(schedule.data)):
            terms = _adam(params, terms_at(r), steps=schedule.steps, lr=schedule.lr, tick=tick)
        return _result(field, kinematics, root, pose, trans, betas.expand(T, -1), terms)


def _mask(mask: np.ndarray | None, obs: torch.Tensor) -> torch.Tensor:
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


class _FieldFrozen:
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


def _result(
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


# ------------------------------------------------------------------------------------------------ 3D joints


def _starts(
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
        with _FieldFrozen(field):
            quat = rotvec_to_quat(rotvec[:, 1:]).to(device=device, dtype=_field_dtype(field))
            tol = 1e-3 * (21 if getattr(field.config, "reduction", "sum") == "sum" else 1)
            projected = project(field, quat.reshape(-1, 21, 4), tol=tol, max_steps=30).quat
            rotvec[:, 1:] = quat_to_rotvec(projected.detach().double().cpu()).reshape(
                count, hypotheses - 1, 21, 3
            )
    return rotvec.to(device=device, dtype=dtype)


def _rigid_start(
    kinematics: Kinematics, obs: torch.Tensor, weight: torch.Tensor, betas: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``root_orient (N, 3)`` and ``trans (N, 3)`` placing the rest pose's joints onto the observed ones (a weighted
    Kabsch fit on every observed joint; the identity where fewer than three are observed)."""
    N = obs.shape[0]
    zero = torch.zeros(N, 3, dtype=obs.dtype, device=obs.device)
    with torch.no_grad():
        rest = kinematics(zero, torch.zeros(N, 21, 3, dtype=obs.dtype, device=obs.device), zero, betas)
    rot, t = _kabsch(rest.double(), obs.double(), weight.double())
    enough = (weight > 0).sum(-1) >= 3
    rot = torch.where(enough[:, None, None], rot, torch.eye(3, dtype=rot.dtype, device=rot.device))
    root_orient = rotmat_to_rotvec(rot)
    # the root rotates about the rest pelvis p0: joints = R (x - p0) + p0 + trans, so trans = R p0 + t - p0
    p0 = rest[:, 0].double()
    trans = (rot @ p0.unsqueeze(-1)).squeeze(-1) + t - p0
    trans = torch.where(enough[:, None], trans, (obs.double() * weight.double().unsqueeze(-1)).sum(-2)
                        / weight.double().sum(-1, keepdim=True).clamp_min(1) - p0)  # fmt: skip
    return root_orient.to(obs.dtype), trans.to(obs.dtype)


def fit_joints(
    field: torch.nn.Module | None,
    observed: np.ndarray,
    *,
    kinematics: Kinematics,
    mask: np.ndarray | None = None,
    hypotheses: int = 1,
    seed: int = 0,
    steps: int = 400,
    lr: float = 0.05,
    w_prior: float = 1.0,
    w_betas: float = 1e-3,
    start_noise: float = 0.6,
    progress: Callable[[int, int], None] | None = None,
) -> BodyFit:
    """Inverse kinematics with a prior: bodies whose joints match ``observed (N, 22, 3)`` (metres; NaN or ``mask``
    false where a joint is missing), ``hypotheses`` per observation from different starts (the rest pose, then
    seeded noisy poses projected onto the prior's manifold), so a partly observed body gets several plausible
    completions. Root orientation and translation start from a rigid (Kabsch) fit of the rest pose; Adam with a
    cosine-decayed rate, in two stages: half the steps with the prior at a hundredth of its weight (the joints
    decide), then the rest at its weight.

    Objective per fit: ``sum_j m_j |J_j - O_j|^2 / sum_j m_j`` (mean squared error, m^2) ``+ w_prior d(q)^2 +
    w_betas |beta|^2``. The prior's weight is relative to a mean squared error: at 1, a distance of 0.01 costs as
    much as a 1 mm error. ``progress(step, steps)`` is called after every optimiser step.

    Returns:
        a :class:`BodyFit` with leading shape ``(N, hypotheses)``, each observation's hypotheses sorted by loss.

    Raises:
        InvalidArgumentError: shapes that do not match, no joint observed, a hypothesis count below 1.
    """
    dtype, dev = kinematics.dtype, kinematics.device
    obs = _as_tensor(observed, dtype, dev)
    if obs.ndim == 2:
        obs = obs[None]
    if obs.ndim != 3 or obs.shape[1:] != (NUM_JOINTS, 3):
        raise InvalidArgumentError(f"observed joints must be (N, 22, 3), got {tuple(obs.shape)}")
    if hypotheses < 1:
        raise InvalidArgumentError(f"hypotheses must be >= 1, got {hypotheses}")
    N, K = obs.shape[0], hypotheses
    weight = _mask(None if mask is None else np.asarray(mask).reshape(N, NUM_JOINTS), obs)
    if bool((weight.sum(-1) == 0).any()):
        raise InvalidArgumentError("every observation needs at least one observed joint")
    root0, trans0 = _rigid_start(kinematics, obs, weight, None)
    root = root0[:, None].expand(N, K, 3).clone().requires_grad_(True)
    trans = trans0[:, None].expand(N, K, 3).clone().requires_grad_(True)
    pose = _starts(field, N, K, seed=seed, noise=start_noise, dtype=dtype, device=dev).requires_grad_(True)
    betas = torch.zeros(N, K, kinematics.num_betas, dtype=dtype, device=dev, requires_grad=True)
    params = [root, pose, trans] + ([betas] if kinematics.num_betas else [])
    obs_k, weight_k = obs[:, None], weight[:, None]
    count = weight_k.sum(-1)

    def per_fit(prior_scale: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        joints = kinematics(root, pose, trans, betas if kinematics.num_betas else None)
        data = ((joints - obs_k) ** 2).sum(-1).mul(weight_k).sum(-1) / count
        terms = {"data": data, "betas": (betas**2).sum(-1)}
        loss = terms["data"] + w_betas * terms["betas"]
        if field is not None and w_prior > 0:
            terms["prior"] = prior_distance(field, pose) ** 2
            loss = loss + prior_scale * w_prior * terms["prior"]
        return loss, terms

    def stage(prior_scale: float) -> Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        def objective() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            loss, terms = per_fit(prior_scale)
            return loss.sum(), {k: v.mean() for k, v in terms.items()}

        return objective

    with _FieldFrozen(field):
        # two stages: the joints first (the prior at a hundredth, so it cannot hold a start far from the answer),
        # then the prior at its weight
        tick = _ticker(steps, progress)
        _adam(params, stage(0.01), steps=steps // 2, lr=lr, final_lr=lr * 0.1, tick=tick)
        terms = _adam(
            params, stage(1.0), steps=steps - steps // 2, lr=lr * 0.3, final_lr=lr * 0.003, tick=tick
        )
        with torch.no_grad():
            loss, _ = per_fit(1.0)
        fit = _result(field, kinematics, root, pose, trans, betas, terms, loss)
    return _sorted(fit)


def _sorted(fit: BodyFit) -> BodyFit:
    """Each observation's hypotheses ordered by loss, best first."""
    order = np.argsort(fit.loss, axis=1, kind="stable")

    def take(a: np.ndarray) -> np.ndarray:
        index = order.reshape(order.shape + (1,) * (a.ndim - 2))
        return np.take_along_axis(a, index, axis=1)

    return replace(fit, root_orient=take(fit.root_orient), pose_body=take(fit.pose_body), trans=take(fit.trans),
                   betas=take(fit.betas), joints=take(fit.joints), distance=take(fit.distance),
                   loss=take(fit.loss))  # fmt: skip


# ------------------------------------------------------------------------------------------------ 2D keypoints


def read_openpose(path: str | os.PathLike[str], *, person: int | None = None) -> np.ndarray:
    """The BODY_25 keypoints ``(25, 3)`` (x, y in pixels; confidence) of one person in an OpenPose JSON file: the
    one given by index, else the most confident (largest summed confidence).

    Raises:
        KeypointFileError: not JSON, no ``people``, nobody in it, keypoints that are not 25 triples of numbers, a
            person index out of range.
    """
    path = user_path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeypointFileError(path, "no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeypointFileError(path, f"not an OpenPose JSON file ({exc})") from None
    except RecursionError:  # nesting deeper than the parser's stack: no OpenPose file is
        raise KeypointFileError(path, "not an OpenPose JSON file (nested too deeply)") from None
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise KeypointFileError(path, "no 'people' list: not OpenPose's JSON output")
    if not people:
        raise KeypointFileError(path, "nobody detected (an empty 'people' list)")
    found = []
    for i, entry in enumerate(people):
        values = entry.get("pose_keypoints_2d") if isinstance(entry, dict) else None
        try:
            kp = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise KeypointFileError(path, f"person {i}: pose_keypoints_2d is not a list of numbers") from None
        if kp.shape != (75,):
            raise KeypointFileError(path, f"person {i}: pose_keypoints_2d is of shape {kp.shape}; BODY_25's is a flat "
                                          "list of 75 numbers (25 x, y, confidence triples)")  # fmt: skip
        if not np.isfinite(kp).all():
            raise KeypointFileError(path, f"person {i}: keypoints that are not finite")
        found.append(kp.reshape(25, 3))
    if person is not None:
        if not 0 <= person < len(found):
            raise KeypointFileError(path, f"person {person} asked for, {len(found)} in the file")
        return found[person]
    return max(found, key=lambda kp: float(kp[:, 2].sum()))


def intrinsics_matrix(intrinsics: Any) -> np.ndarray:
    """``(3, 3)`` from a matrix, ``(fx, fy, cx, cy)`` or ``(f, cx, cy)``.

    Raises:
        InvalidArgumentError: anything else, or a focal length that is not positive.
    """
    try:
        k = np.asarray(intrinsics, dtype=np.float64)
    except (TypeError, ValueError):
        k = np.zeros(0)
    if k.shape == (3,):
        k = np.array([k[0], k[0], k[1], k[2]])
    if k.shape == (4,):
        k = np.array([[k[0], 0, k[2]], [0, k[1], k[3]], [0, 0, 1.0]])
    # focal lengths in pixels (or 1 for normalised coordinates): far outside, the reprojection's scale under- or
    # overflows (1e-300 squared is 0)
    usable = k.shape == (3, 3) and np.isfinite(k).all() and bool(np.all(np.abs(k) <= FOCAL_RANGE[1]))
    if not (usable and FOCAL_RANGE[0] <= k[0, 0] and FOCAL_RANGE[0] <= k[1, 1]):
        raise InvalidArgumentError(
            "intrinsics must be a 3x3 matrix, (fx, fy, cx, cy) or (f, cx, cy), focal lengths from "
            f"{FOCAL_RANGE[0]:g} to {FOCAL_RANGE[1]:g} (pixels), got {intrinsics!r}"
        )
    return k


FOCAL_RANGE = (1e-3, 1e7)
"""The focal lengths (and the largest entry) an intrinsics matrix may have."""

KEYPOINT_STEPS = (100, 150, 150, 200)
""":func:`fit_keypoints`'s stages: Adam steps of the camera stage, then of each prior weight."""


def keypoint_stages(total: int, stages: tuple[int, ...] = KEYPOINT_STEPS) -> tuple[int, ...]:
    """``total`` Adam steps spread over ``stages`` in their proportions (each stage at least one step; the rounding
    goes to the last), e.g. ``keypoint_stages(60) == (10, 15, 15, 20)``.

    Raises:
        InvalidArgumentError: fewer steps than stages.
    """
    if total < len(stages):
        raise InvalidArgumentError(f"{total} steps for {len(stages)} stages: at least one a stage")
    spread = [max(1, int(total * s // sum(stages))) for s in stages[:-1]]
    return (*spread, total - sum(spread))


def fit_keypoints(
    field: torch.nn.Module | None,
    keypoints: np.ndarray,
    *,
    intrinsics: Any,
    kinematics: Kinematics,
    hypotheses: int = 4,
    seed: int = 0,
    steps: tuple[int, ...] = KEYPOINT_STEPS,
    prior_weights: tuple[float, ...] = (10.0, 3.0, 1.0),
    w_betas: float = 1e-2,
    sigma: float = 100.0,
    lr: float = 0.03,
    min_confidence: float = 0.1,
    progress: Callable[[int, int], None] | None = None,
) -> BodyFit:
    """SMPLify-style fit of a body to OpenPose BODY_25 keypoints ``(25, 3)`` or ``(N, 25, 3)`` under a pinhole
    camera at the origin (OpenCV axes: x right, y down, z forward; ``intrinsics`` as :func:`intrinsics_matrix`).

    The body is fitted in the camera's frame. Stages (``steps[0]`` then one per prior weight): the camera stage
    moves only the root orientation and translation to match the torso (shoulders and hips), starting facing the
    camera at the depth the torso's pixel length implies; then all parameters with the prior's weight falling
    (``prior_weights``, relative to the data term). The data term is Geman-McClure on the reprojection error,
    ``sum_j c_j w_j rho(|pi(J_j) - x_j| / f)`` with ``rho(r) = s^2 r^2 / (s^2 + r^2)`` and ``s = sigma / f``, divided
    by the summed weights (``c``: OpenPose's confidence, keypoints under ``min_confidence`` left out; ``w``: the
    mapping's weight, :data:`BODY25_TO_SMPL`). ``hypotheses`` starts (the rest pose, then prior-projected noisy poses)
    are fitted at once and sorted by loss, best first: depth is ambiguous from one view.

    ``progress(step, steps)`` is called after every optimiser step (``steps`` summed over the stages).

    Returns:
        a :class:`BodyFit` with leading shape ``(N, hypotheses)``; ``terms`` holds ``reprojection_px``, the best
        hypotheses' mean reprojection error in pixels over the keypoints used.

    Raises:
        InvalidArgumentError: keypoints of another shape, too few confident keypoints, bad intrinsics or stages.
    """
    K_cam = intrinsics_matrix(intrinsics)
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[1:] != (25, 3):
        raise InvalidArgumentError(f"keypoints must be (N, 25, 3) BODY_25 (x, y, confidence), got {kp.shape}")
    if len(steps) != len(prior_weights) + 1:
        raise InvalidArgumentError("steps needs one entry for the camera stage and one per prior weight")
    dtype, dev = kinematics.dtype, kinematics.device
    N, H = kp.shape[0], hypotheses
    ops = np.array(list(BODY25_TO_SMPL))
    smpl = torch.as_tensor([BODY25_TO_SMPL[i][0] for i in ops], device=dev)
    conf = kp[:, ops, 2] * np.array([BODY25_TO_SMPL[i][1] for i in ops])
    conf[kp[:, ops, 2] < min_confidence] = 0
    if ((conf > 0).sum(-1) < 6).any():
        raise InvalidArgumentError(
            "each person needs at least 6 confident keypoints of the body to be fitted"
        )
    focal = float(np.sqrt(K_cam[0, 0] * K_cam[1, 1]))
    target = torch.as_tensor(kp[:, None, ops, :2], dtype=dtype, device=dev)  # (N, 1, M, 2)
    weight = torch.as_tensor(conf[:, None], dtype=dtype, device=dev)
    torso = torch.as_tensor(np.isin(ops, _TORSO_BODY25), dtype=dtype, device=dev) * weight
    kmat = torch.as_tensor(K_cam, dtype=dtype, device=dev)
    s2 = (sigma / focal) ** 2

    # the start: facing the camera (a half turn about x from the model's Y-up, Z-forward frame), at the depth where
    # the rest torso (shoulders to hips) is as long as its keypoints
    zero3 = torch.zeros(N, 3, dtype=dtype, device=dev)
    with torch.no_grad():
        rest = (
            kinematics(zero3, torch.zeros(N, 21, 3, dtype=dtype, device=dev), zero3, None)[0]
            .double()
            .cpu()
            .numpy()
        )
    length_3d = np.linalg.norm(rest[[16, 17]].mean(0) - rest[[1, 2]].mean(0))
    px = kp[:, ops, :2]
    m_sh, m_hip = np.isin(ops, (2, 5)), np.isin(ops, (9, 12))
    length_px = np.linalg.norm(px[:, m_sh].mean(1) - px[:, m_hip].mean(1), axis=-1)
    depth = focal * length_3d / np.maximum(length_px, 1.0)
    centre_px = px[:, m_sh | m_hip].mean(1)
    centre_cam = np.stack([(centre_px[:, 0] - K_cam[0, 2]) / K_cam[0, 0] * depth,
                           (centre_px[:, 1] - K_cam[1, 2]) / K_cam[1, 1] * depth, depth], -1)  # fmt: skip
    flip = np.diag([1.0, -1.0, -1.0])
    torso_rest = np.concatenate([rest[[16, 17]], rest[[1, 2]]]).mean(0)
    trans_np = centre_cam - flip @ (torso_rest - rest[0]) - rest[0]
    root = (
        torch.tensor([math.pi, 0.0, 0.0], dtype=dtype, device=dev)
        .expand(N, H, 3)
        .clone()
        .requires_grad_(True)
    )
    trans = (
        torch.as_tensor(trans_np, dtype=dtype, device=dev)[:, None]
        .expand(N, H, 3)
        .clone()
        .requires_grad_(True)
    )
    pose = _starts(field, N, H, seed=seed, noise=0.4, dtype=dtype, device=dev).requires_grad_(True)
    betas = torch.zeros(N, H, kinematics.num_betas, dtype=dtype, device=dev, requires_grad=True)

    def reprojection(joints: torch.Tensor) -> torch.Tensor:
        cam = joints[..., smpl, :] @ kmat.T
        return cam[..., :2] / cam[..., 2:].clamp_min(1e-3)

    def per_fit(w_prior: float, keys: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        joints = kinematics(root, pose, trans, betas if kinematics.num_betas else None)
        r2 = ((reprojection(joints) - target) ** 2).sum(-1) / focal**2
        rho = s2 * r2 / (s2 + r2)
        data = (rho * keys).sum(-1) / keys.sum(-1).clamp_min(1e-12) / s2
        terms = {"data": data, "betas": (betas**2).sum(-1)}
        loss = data + w_betas * terms["betas"]
        if field is not None and w_prior > 0:
            terms["prior"] = prior_distance(field, pose) ** 2
            loss = loss + w_prior * terms["prior"]
        return loss, terms

    def stage(
        w_prior: float, keys: torch.Tensor
    ) -> Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        def objective() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            loss, terms = per_fit(w_prior, keys)
            return loss.sum(), {k: v.mean() for k, v in terms.items()}

        return objective

    with _FieldFrozen(field):
        tick = _ticker(sum(steps), progress)
        terms = _adam([root, trans], stage(0.0, torso), steps=steps[0], lr=lr, tick=tick)
        params = [root, pose, trans] + ([betas] if kinematics.num_betas else [])
        for n, w in zip(steps[1:], prior_weights, strict=True):
            terms = _adam(params, stage(w, weight), steps=n, lr=lr, final_lr=lr * 0.1, tick=tick)
        with torch.no_grad():
            loss, _ = per_fit(prior_weights[-1], weight)
            joints = kinematics(root, pose, trans, betas if kinematics.num_betas else None)
            err = ((reprojection(joints) - target) ** 2).sum(-1).sqrt()
        fit = _sorted(_result(field, kinematics, root, pose, trans, betas, terms, loss))
    best = np.argmin(loss.cpu().numpy(), axis=1)
    err_best = err.cpu().numpy()[np.arange(N), best]
    used = conf > 0
    fit.terms["reprojection_px"] = float((err_best * used).sum() / used.sum())
    return fit


def project_points(joints: np.ndarray, intrinsics: Any) -> np.ndarray:
    """``(..., J, 2)`` pixel coordinates of camera-frame points ``joints (..., J, 3)``."""
    cam = np.asarray(joints, dtype=np.float64) @ intrinsics_matrix(intrinsics).T
    return cam[..., :2] / cam[..., 2:]


def keypoints_from_joints(joints: np.ndarray, intrinsics: Any, *, confidence: float = 0.9) -> np.ndarray:
    """``(..., 25, 3)`` BODY_25 keypoints of camera-frame body joints ``(..., 22, 3)`` through the mapping of
    :data:`BODY25_TO_SMPL` (keypoints without a body joint get confidence 0): for tests and for making inputs."""
    px = project_points(joints, intrinsics)
    out = np.zeros((*px.shape[:-2], 25, 3))
    for op, (j, _) in BODY25_TO_SMPL.items():
        out[..., op, :2] = px[..., j, :]
        out[..., op, 2] = confidence
    return out


def write_openpose(path: str | os.PathLike[str], keypoints: np.ndarray) -> Path:
    """One OpenPose JSON file (version 1.3 layout) with one person per ``(25, 3)`` row of ``keypoints``."""
    from .._util.atomic import atomic_open

    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 25, 3)
    people = [{"person_id": [-1], "pose_keypoints_2d": [float(v) for v in p.reshape(-1)],
               "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": []}
              for p in kp]  # fmt: skip
    with atomic_open(path) as fp:
        fp.write(json.dumps({"version": 1.3, "people": people}).encode())
    return Path(path)
