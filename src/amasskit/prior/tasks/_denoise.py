"""Motion denoising with a pose prior (``amasskit prior denoise``): the body fitted to a noisy motion's joints
with a temporal term and the prior, on a schedule of rounds (:class:`DenoiseSchedule`, Pose-NDF's after HuMoR)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Final

import numpy as np
import torch

from ...errors import InvalidArgumentError
from ._body import (
    NUM_JOINTS,
    BodyFit,
    FrozenField,
    Kinematics,
    as_tensor,
    fit_result,
    observed_weights,
    prior_distance,
    run_adam,
    step_counter,
)

logger = logging.getLogger(__name__)

__all__ = ["DENOISE_PRESETS", "DenoiseSchedule", "denoise_motion"]


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
        return cls(
            lr=lr,
            steps=steps,
            data=tuple(100 / (1 + i * i) for i in its),
            temporal=tuple(10.0 * (1 + i) for i in its),
            betas=(10.0,) * rounds,
            prior=tuple(1e5 * (1 + i) for i in its),
        )

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
        values: dict[str, Any] = {
            k: tuple(float(x) for x in v) if isinstance(v, list | tuple) else v
            for k, v in data.items()
            if k in known
        }
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
    obs = as_tensor(observed, dtype, dev)
    T = obs.shape[0]
    if obs.shape != (T, NUM_JOINTS, 3) or T < 2:
        raise InvalidArgumentError(f"observed joints must be (T >= 2, 22, 3), got {tuple(obs.shape)}")
    weight = observed_weights(mask, obs)
    root = as_tensor(init["root_orient"], dtype, dev).reshape(T, 3).clone().requires_grad_(True)
    pose = as_tensor(init["pose_body"], dtype, dev).reshape(T, 21, 3).clone().requires_grad_(True)
    trans = as_tensor(init["trans"], dtype, dev).reshape(T, 3).clone().requires_grad_(True)
    betas = torch.zeros(kinematics.num_betas, dtype=dtype, device=dev)
    if init.get("betas") is not None and kinematics.num_betas:
        given = as_tensor(init["betas"], dtype, dev).reshape(-1)[: kinematics.num_betas]
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
            weights = {
                "data": schedule.data[r],
                "temporal": schedule.temporal[r],
                "betas": schedule.betas[r],
                "prior": schedule.prior[r],
            }
            return sum(
                (weights[k] * v for k, v in terms.items()), torch.zeros((), dtype=dtype, device=dev)
            ), terms

        return objective

    terms: dict[str, torch.Tensor] = {}
    tick = step_counter(warmup + len(schedule.data) * schedule.steps, progress)
    with FrozenField(field):
        if warmup:
            run_adam(params, terms_at(0, prior=False), steps=warmup, lr=schedule.lr, tick=tick)
        for r in range(len(schedule.data)):
            terms = run_adam(params, terms_at(r), steps=schedule.steps, lr=schedule.lr, tick=tick)
        return fit_result(field, kinematics, root, pose, trans, betas.expand(T, -1), terms)
