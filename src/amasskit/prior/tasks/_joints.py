"""Inverse kinematics with a pose prior (``amasskit prior fit`` of 3D joints): bodies fitted to observed joints,
any subset missing, several hypotheses from different starts, best first."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from ...errors import InvalidArgumentError
from ._body import (
    NUM_JOINTS,
    BodyFit,
    FrozenField,
    Kinematics,
    as_tensor,
    best_first,
    fit_result,
    observed_weights,
    prior_distance,
    rigid_start,
    run_adam,
    start_poses,
    step_counter,
)

logger = logging.getLogger(__name__)

__all__ = ["fit_joints"]


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
    obs = as_tensor(observed, dtype, dev)
    if obs.ndim == 2:
        obs = obs[None]
    if obs.ndim != 3 or obs.shape[1:] != (NUM_JOINTS, 3):
        raise InvalidArgumentError(f"observed joints must be (N, 22, 3), got {tuple(obs.shape)}")
    if hypotheses < 1:
        raise InvalidArgumentError(f"hypotheses must be >= 1, got {hypotheses}")
    N, K = obs.shape[0], hypotheses
    weight = observed_weights(None if mask is None else np.asarray(mask).reshape(N, NUM_JOINTS), obs)
    if bool((weight.sum(-1) == 0).any()):
        raise InvalidArgumentError("every observation needs at least one observed joint")
    root0, trans0 = rigid_start(kinematics, obs, weight, None)
    root = root0[:, None].expand(N, K, 3).clone().requires_grad_(True)
    trans = trans0[:, None].expand(N, K, 3).clone().requires_grad_(True)
    pose = start_poses(field, N, K, seed=seed, noise=start_noise, dtype=dtype, device=dev).requires_grad_(
        True
    )
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

    with FrozenField(field):
        # two stages: the joints first (the prior at a hundredth, so it cannot hold a start far from the answer),
        # then the prior at its weight
        tick = step_counter(steps, progress)
        run_adam(params, stage(0.01), steps=steps // 2, lr=lr, final_lr=lr * 0.1, tick=tick)
        terms = run_adam(
            params, stage(1.0), steps=steps - steps // 2, lr=lr * 0.3, final_lr=lr * 0.003, tick=tick
        )
        with torch.no_grad():
            loss, _ = per_fit(1.0)
        fit = fit_result(field, kinematics, root, pose, trans, betas, terms, loss)
    return best_first(fit)
