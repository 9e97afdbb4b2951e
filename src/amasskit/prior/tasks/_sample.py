"""Generating poses with a prior: random starts projected onto the field's zero set (:func:`sample_poses`,
``amasskit prior sample``), and a path between two poses that stays on the manifold (:func:`interpolate_poses`,
``amasskit prior interpolate``): a step of ``step_size`` of the way toward B (per-joint slerp), projected, repeated
until B is reached."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from ..._util.hardware import check_memory
from ...errors import InvalidArgumentError
from ...rotations import quat_angle, quat_canonical, quat_slerp, rotvec_to_quat
from ..field import DistanceFieldConfig, ManifoldProjection, project_to_manifold, random_poses

logger = logging.getLogger(__name__)

__all__ = ["STARTS", "interpolate_poses", "sample_poses"]

STARTS = ("haar", "noisy-identity")


def sample_poses(
    model: torch.nn.Module,
    count: int,
    *,
    start: str | np.ndarray | torch.Tensor = "haar",
    seed: int = 0,
    noise: float = 0.5,
    tol: float | None = None,
    max_steps: int = 100,
    method: str = "rdfgrad",
    keep_steps: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ManifoldProjection:
    """``count`` poses projected onto the field's zero set from seeded starts.

    Args:
        start: ``haar`` (uniformly random rotations), ``noisy-identity`` (each joint the identity turned by a
            Gaussian rotation vector of ``noise`` radians a component) or ``(N, J, 4)`` poses (the first ``count``).
        tol: stop a pose under this distance (default: 1e-3 a joint, in the model's units).
        max_steps, method, keep_steps, progress: as :func:`~amasskit.prior.project_to_manifold`.

    Raises:
        InvalidArgumentError: an unknown start or a start array of the wrong shape.
    """
    config = _config(model)
    J = config.joints
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidArgumentError(f"count must be an integer >= 1, got {count!r}")
    # every pose's activations (kept for the gradient) through the network at once: refused before allocating
    per_pose = 4 * 3 * (J * (config.hidden + config.feature + 16) + sum(config.dims))
    check_memory(count * per_pose, f"projecting {count:,} poses at once")
    generator = torch.Generator().manual_seed(seed)
    if isinstance(start, str):
        if start == "haar":
            quat = random_poses(count, joints=J, generator=generator)
        elif start == "noisy-identity":
            rotvec = torch.randn(count, J, 3, generator=generator, dtype=torch.float64) * noise
            quat = torch.as_tensor(np.asarray(rotvec_to_quat(rotvec.numpy()), dtype=np.float32))
        else:
            raise InvalidArgumentError(f"start must be one of {', '.join(STARTS)} or poses, got {start!r}")
    else:
        given = start.detach().cpu().numpy() if isinstance(start, torch.Tensor) else np.asarray(start)
        if given.ndim != 3 or given.shape[1:] != (J, 4) or not np.issubdtype(given.dtype, np.number):
            raise InvalidArgumentError(
                f"start poses must be (N, {J}, 4) quaternions, got {given.dtype} {tuple(given.shape)}"
            )
        quat = torch.as_tensor(given[:count].astype(np.float32))
        if not torch.isfinite(quat).all():
            raise InvalidArgumentError("start poses hold values that are not finite")
    weight = next(model.parameters(), None)  # a field without parameters (ExactField) stays where it is
    return project_to_manifold(
        model,
        quat if weight is None else quat.to(weight.device),
        method=method,
        max_steps=max_steps,
        tol=_default_tol(model, tol),
        keep_steps=keep_steps,
        progress=progress,
    )


def _config(model: torch.nn.Module) -> DistanceFieldConfig:
    config = getattr(model, "config", None)
    if not isinstance(config, DistanceFieldConfig):
        raise InvalidArgumentError(
            "the model must be a DistanceField (or carry its config, as ExactField does)"
        )
    return config


def _default_tol(model: torch.nn.Module, tol: float | None) -> float:
    if tol is not None:
        return tol
    config = _config(model)
    return 1e-3 * (config.joints if config.reduction == "sum" else 1)


def interpolate_poses(
    model: torch.nn.Module,
    a: np.ndarray,
    b: np.ndarray,
    *,
    step_size: float = 0.1,
    max_steps: int = 200,
    tol: float | None = None,
    project_steps: int = 20,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A path on the manifold from pose ``a (J, 4)`` to pose ``b (J, 4)``: repeatedly a per-joint slerp
    ``step_size`` of the way toward ``b``, then a projection (at most ``project_steps`` evaluations); the path ends
    at ``b`` once every joint is within a degree of it, once a projected step no longer brings it nearer (``b``
    itself off the field's zero set), or after ``max_steps``; ``progress(step, max_steps)`` is called after each
    step (and with ``max_steps`` at the end).

    Returns:
        ``path (K, J, 4)`` float32 XYZW (``path[0] = a``, ``path[-1] = b``) and ``distance (K,)`` by the field.

    Raises:
        InvalidArgumentError: poses of the wrong shape, a step size outside ``(0, 1]``.
    """
    J = _config(model).joints
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != (J, 4) or b.shape != (J, 4):
        raise InvalidArgumentError(f"poses must be ({J}, 4) quaternions, got {a.shape} and {b.shape}")
    if not 0 < step_size <= 1:
        raise InvalidArgumentError(f"step_size must be in (0, 1], got {step_size}")
    a = np.asarray(quat_canonical(a / np.linalg.norm(a, axis=-1, keepdims=True)))
    b = np.asarray(quat_canonical(b / np.linalg.norm(b, axis=-1, keepdims=True)))
    tol = _default_tol(model, tol)
    path = [a]
    close = np.deg2rad(1.0)  # every joint within a degree of b: the next step is b itself
    total = remaining = float(np.sum(quat_angle(a, b)))
    stopped = "max_steps"
    for _ in range(max_steps):
        x = path[-1]
        if np.max(quat_angle(x, b)) < close:
            stopped = ""
            break
        moved = torch.as_tensor(np.asarray(quat_slerp(x, b, step_size))[None], dtype=torch.float32)
        nxt = (
            project_to_manifold(model, moved, tol=tol, max_steps=project_steps)
            .quat[0]
            .detach()
            .cpu()
            .double()
            .numpy()
        )
        left = float(np.sum(quat_angle(nxt, b)))
        if left >= remaining:
            stopped = "pulled back"  # the projection undoes the step: b is off the field's zero set; go to b
            break
        path.append(nxt)
        remaining = left
        if progress is not None:
            progress(len(path) - 1, max_steps)
    if progress is not None:
        progress(max_steps, max_steps)
    if stopped:
        why = (
            f"the {max_steps} steps (max_steps) ran out"
            if stopped == "max_steps"
            else "a projected step no longer brought the path nearer B (B lies off the prior's zero set, or the prior "
            "is poor)"
        )
        logger.warning(
            "interpolation: %s; the path jumps straight to B from pose %d, %.0f%% of the way short "
            "(%.3g of %.3g rad left)",
            why,
            len(path) - 1,
            100 * remaining / max(total, 1e-12),
            remaining,
            total,
        )
    path.append(b)
    quats = np.stack(path).astype(np.float32)
    with torch.no_grad():
        distance = model(torch.as_tensor(quats)).detach().cpu().numpy()
    return quats, distance
