"""Projecting poses onto the manifold a distance field describes: gradient steps until the distance is under ``tol``.

Methods (``q``: per-joint unit quaternions, ``f``: the field, ``g = grad_q f``):

* ``rdfgrad`` (NRDF's RDFGrad): each joint's gradient projected onto the tangent space of the sphere at ``q_j``
  (``r_j = g_j - <g_j, q_j> q_j``), normalised per joint, and a step of angle ``t = alpha f(q)`` along the great
  circle, ``q_j <- cos(t) q_j - sin(t) r_j / |r_j|`` (the quaternion exponential map ``q_j exp(-t conj(q_j) r_j/|r_j|)``
  written out). ``alpha`` starts at ``1 / J`` for a field summed over ``J`` joints (a step that would reach the
  manifold if every joint's distance fell at unit rate), ``1`` for a mean.
* ``posendf`` (Pose-NDF's): ``q <- q - alpha f(q) g / |g|`` over all ``4 J`` numbers, then normalised and flipped
  to ``w >= 0``; ``alpha`` starts at 1.

Step control (``step_control=True``, the default): a step that would raise the distance is not taken; the pose
halves its ``alpha`` and tries again from where it was (its gradient there is kept), and after a step that is taken
``alpha`` grows by half again, up to 4 times its start. So no step raises the distance, and a pose stops as soon as
its distance is under ``tol`` (or after ``max_steps`` evaluations, or when its step has shrunk to nothing). Pose-NDF's
own loop is ``method="posendf", step_control=False, tol=0, max_steps=100``.

Every iteration evaluates the network and its gradient once on the poses still moving: ``evaluations`` counts them
per pose, the cost to compare with a fixed number of steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import torch
from torch.nn import functional

from ...choices import ProjectionMethod, values
from ...errors import InvalidArgumentError
from ...rotations import quat_canonical
from ._network import DistanceField

__all__ = ["PROJECTION_METHODS", "ManifoldProjection", "project_to_manifold", "random_poses"]

PROJECTION_METHODS: Final[tuple[str, ...]] = values(ProjectionMethod)
_MIN_ALPHA_FRACTION: Final[float] = 1e-4  # a pose whose step shrank to this fraction of its start has stalled


@dataclass
class ManifoldProjection:
    """What :func:`project` returns (leading shape ``(...)`` of the input).

    Attributes:
        quat: ``(..., J, 4)`` the projected poses, XYZW, ``w >= 0``.
        distance: ``(...)`` their distances by the field.
        converged: ``(...)`` bool, distance under ``tol``.
        steps: ``(...)`` int64 steps taken (each lowered the distance, with step control).
        evaluations: ``(...)`` int64 network evaluations (value and gradient) spent on each pose.
        history: with ``keep_steps``, ``(S + 1, ..., J, 4)`` the poses after every iteration (the start first; a
            pose that stopped repeats its last); history_distance ``(S + 1, ...)`` their distances.
    """

    quat: torch.Tensor
    distance: torch.Tensor
    converged: torch.Tensor
    steps: torch.Tensor
    evaluations: torch.Tensor
    history: torch.Tensor | None = None
    history_distance: torch.Tensor | None = None


def random_poses(
    count: int,
    *,
    joints: int = 21,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """``(count, joints, 4)`` poses of independent uniformly random rotations (Haar measure: normalised Gaussian
    4-vectors are uniform on the sphere of unit quaternions), XYZW with ``w >= 0``; drawn on the CPU from
    ``generator``, so the same seed gives the same poses on every device."""
    x = torch.randn(count, joints, 4, generator=generator, dtype=torch.float64)
    return quat_canonical(x, normalize=True).to(dtype=dtype, device=device)


def _value_and_grad(model: torch.nn.Module, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(model, DistanceField):  # projection never needs the weights' gradients
        d, g = model.value_and_grad(q)  # written out: no autograd graph of the network
        return d.to(q.dtype), g.to(q.dtype)
    with torch.enable_grad():
        x = q.detach().requires_grad_(True)
        d = model(x)
        (g,) = torch.autograd.grad(d.sum(), x)
    return d.detach().to(q.dtype), g.to(
        q.dtype
    )  # a float64 field (ExactField) on float32 poses: the poses' dtype


def _step(
    method: str, q: torch.Tensor, d: torch.Tensor, g: torch.Tensor, alpha: torch.Tensor
) -> torch.Tensor:
    """Poses ``q (B, J, 4)`` after one step of ``alpha (B,)`` times their distances ``d (B,)``."""
    if method == "rdfgrad":
        tangent = g - (g * q).sum(-1, keepdim=True) * q
        direction = functional.normalize(
            tangent, dim=-1
        )  # a joint with no gradient has a zero direction: it stays
        angle = (alpha * d)[:, None, None]
        return quat_canonical(torch.cos(angle) * q - torch.sin(angle) * direction, normalize=True)
    flat = g.reshape(len(g), -1)
    unit = (flat / flat.norm(dim=-1, keepdim=True).clamp_min(1e-30)).reshape(g.shape)
    return quat_canonical(q - (alpha * d)[:, None, None] * unit, normalize=True)


def project_to_manifold(
    model: DistanceField | torch.nn.Module,
    quat: torch.Tensor,
    *,
    method: str = "rdfgrad",
    max_steps: int = 100,
    tol: float = 1e-3,
    step_size: float | None = None,
    step_control: bool = True,
    keep_steps: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ManifoldProjection:
    """Project poses ``quat (..., J, 4)`` (XYZW, any sign) onto the field's zero set (see the module doc).

    Args:
        method: ``rdfgrad`` or ``posendf``. max_steps: network evaluations per pose at most.
        tol: stop a pose once its distance is under this (in the model's units).
        step_size: ``alpha``'s start (default: ``1/J`` for ``rdfgrad`` on a summed field, else 1).
        step_control: never take a step that raises the distance (else every step is taken, as the originals).
        keep_steps: also return every intermediate pose (for viewing).
        progress: called as ``progress(done, poses)`` after every step: the poses that have stopped.

    Raises:
        InvalidArgumentError: an unknown method, ``max_steps < 1``, a negative ``tol``, poses of the wrong shape.
    """
    if method not in PROJECTION_METHODS:
        raise InvalidArgumentError(f"method must be one of {', '.join(PROJECTION_METHODS)}, got {method!r}")
    if max_steps < 1 or not tol >= 0:
        raise InvalidArgumentError(f"need max_steps >= 1 and tol >= 0, got {max_steps} and {tol}")
    config = getattr(model, "config", None)
    J = int(config.joints) if config is not None else quat.shape[-2]
    if quat.ndim < 2 or quat.shape[-2:] != (J, 4):
        raise InvalidArgumentError(f"poses must be (..., {J}, 4) quaternions, got {tuple(quat.shape)}")
    if step_size is None:
        summed = config is None or getattr(config, "reduction", "sum") == "sum"
        step_size = 1.0 / J if method == "rdfgrad" and summed else 1.0
    lead = quat.shape[:-2]
    q = quat_canonical(quat.reshape(-1, J, 4).detach(), normalize=True)
    B = len(q)
    alpha0 = torch.full((B,), float(step_size), dtype=q.dtype, device=q.device)
    alpha = alpha0.clone()
    steps = torch.zeros(B, dtype=torch.int64, device=q.device)
    evaluations = torch.ones(B, dtype=torch.int64, device=q.device)
    was_training = model.training
    model.eval()
    try:
        d, g = _value_and_grad(model, q)
        history = [q.clone()] if keep_steps else []
        history_d = [d.clone()] if keep_steps else []
        active = d >= tol if tol > 0 else torch.ones(B, dtype=torch.bool, device=q.device)
        while True:
            active &= evaluations < max_steps
            if step_control:
                active &= alpha > alpha0 * _MIN_ALPHA_FRACTION
            rows = active.nonzero().squeeze(1)
            if progress is not None:
                progress(B - len(rows), B)
            if len(rows) == 0:
                break
            trial = _step(method, q[rows], d[rows], g[rows], alpha[rows])
            d_new, g_new = _value_and_grad(model, trial)
            evaluations[rows] += 1
            better = d_new <= d[rows] if step_control else torch.ones_like(d_new, dtype=torch.bool)
            take = rows[better]
            q[take], d[take], g[take] = trial[better], d_new[better], g_new[better]
            steps[take] += 1
            if step_control:
                alpha[take] = torch.minimum(alpha[take] * 1.5, alpha0[take] * 4)
                alpha[rows[~better]] *= 0.5
            if tol > 0:
                active[take] &= d[take] >= tol
            if keep_steps:
                history.append(q.clone())
                history_d.append(d.clone())
    finally:
        model.train(was_training)
    return ManifoldProjection(
        quat=q.reshape(*lead, J, 4),
        distance=d.reshape(lead),
        converged=(d < tol).reshape(lead),
        steps=steps.reshape(lead),
        evaluations=evaluations.reshape(lead),
        history=torch.stack(history).reshape(-1, *lead, J, 4) if keep_steps else None,
        history_distance=torch.stack(history_d).reshape(-1, *lead) if keep_steps else None,
    )
