"""SMPLify-style fitting to 2D keypoints with a pose prior (``amasskit prior fit --intrinsics``): OpenPose BODY_25
keypoints mapped to the body's joints, a camera stage on the torso, then the body in stages, the reprojection error
robust (Geman-McClure); and the pinhole camera it uses."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import torch

from ...errors import InvalidArgumentError
from ._body import (
    BodyFit,
    FrozenField,
    Kinematics,
    best_first,
    fit_result,
    prior_distance,
    run_adam,
    start_poses,
    step_counter,
)

logger = logging.getLogger(__name__)

__all__ = [
    "BODY25_TO_SMPL",
    "FOCAL_RANGE",
    "KEYPOINT_PRIOR_WEIGHTS",
    "KEYPOINT_STEPS",
    "MIN_KEYPOINTS",
    "camera_to_pixels",
    "fit_keypoints",
    "fittable_keypoints",
    "intrinsics_matrix",
    "keypoint_stages",
    "keypoints_from_joints",
]


#: OpenPose BODY_25 keypoint -> (SMPL body joint, weight). Nose -> head and the big toes -> the feet are
#: approximations, and OpenPose's hips sit wider than SMPL's hip joints, so they count half. Eyes, ears, small toes
#: and heels have no body joint and are not used.
BODY25_TO_SMPL: Final[dict[int, tuple[int, float]]] = {
    0: (15, 0.5),
    1: (12, 1.0),
    2: (17, 1.0),
    3: (19, 1.0),
    4: (21, 1.0),
    5: (16, 1.0),
    6: (18, 1.0),
    7: (20, 1.0),
    8: (0, 0.5),
    9: (2, 0.5),
    10: (5, 1.0),
    11: (8, 1.0),
    12: (1, 0.5),
    13: (4, 1.0),
    14: (7, 1.0),
    19: (10, 0.5),
    22: (11, 0.5),
}


_TORSO_BODY25: Final[tuple[int, ...]] = (2, 5, 9, 12)  # shoulders and hips: the camera stage's keypoints


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


KEYPOINT_STEPS = (100, 150, 150, 200)


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


#: the prior's weights of the body stages (relative to the data term), falling
KEYPOINT_PRIOR_WEIGHTS: Final[tuple[float, ...]] = (10.0, 3.0, 1.0)
#: confident body keypoints a person needs to be fitted
MIN_KEYPOINTS: Final[int] = 6


def fittable_keypoints(keypoints: np.ndarray, *, min_confidence: float = 0.1) -> np.ndarray:
    """``(...)`` bool: whether each person's BODY_25 keypoints ``(..., 25, 3)`` hold at least :data:`MIN_KEYPOINTS`
    body keypoints (those :data:`BODY25_TO_SMPL` maps) of confidence ``min_confidence`` or more."""
    kp = np.asarray(keypoints, dtype=np.float64)
    return (kp[..., list(BODY25_TO_SMPL), 2] >= min_confidence).sum(-1) >= MIN_KEYPOINTS


def fit_keypoints(
    field: torch.nn.Module | None,
    keypoints: np.ndarray,
    *,
    intrinsics: Any,
    kinematics: Kinematics,
    hypotheses: int = 4,
    seed: int = 0,
    steps: tuple[int, ...] = KEYPOINT_STEPS,
    prior_weights: tuple[float, ...] = KEYPOINT_PRIOR_WEIGHTS,
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
    if not fittable_keypoints(kp, min_confidence=min_confidence).all():
        raise InvalidArgumentError(
            f"each person needs at least {MIN_KEYPOINTS} confident keypoints of the body to be fitted"
        )
    focal = float(np.sqrt(K_cam[0, 0] * K_cam[1, 1]))
    target = torch.as_tensor(kp[:, None, ops, :2], dtype=dtype, device=dev)  # (N, 1, M, 2)
    weight = torch.as_tensor(conf[:, None], dtype=dtype, device=dev)
    torso = torch.as_tensor(np.isin(ops, _TORSO_BODY25), dtype=dtype, device=dev) * weight
    kmat = torch.as_tensor(K_cam, dtype=dtype, device=dev)
    s2 = (sigma / focal) ** 2

    root, trans = (
        x.expand(N, H, 3).clone().requires_grad_(True)
        for x in _facing_start(kinematics, kp[:, ops, :2], ops, K_cam, focal)
    )
    pose = start_poses(field, N, H, seed=seed, noise=0.4, dtype=dtype, device=dev).requires_grad_(True)
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

    with FrozenField(field):
        tick = step_counter(sum(steps), progress)
        terms = run_adam([root, trans], stage(0.0, torso), steps=steps[0], lr=lr, tick=tick)
        params = [root, pose, trans] + ([betas] if kinematics.num_betas else [])
        for n, w in zip(steps[1:], prior_weights, strict=True):
            terms = run_adam(params, stage(w, weight), steps=n, lr=lr, final_lr=lr * 0.1, tick=tick)
        with torch.no_grad():
            loss, _ = per_fit(prior_weights[-1], weight)
            joints = kinematics(root, pose, trans, betas if kinematics.num_betas else None)
            err = ((reprojection(joints) - target) ** 2).sum(-1).sqrt()
        fit = best_first(fit_result(field, kinematics, root, pose, trans, betas, terms, loss))
    best = np.argmin(loss.cpu().numpy(), axis=1)
    err_best = err.cpu().numpy()[np.arange(N), best]
    used = conf > 0
    fit.terms["reprojection_px"] = float((err_best * used).sum() / used.sum())
    return fit


def _facing_start(
    kinematics: Kinematics, px: np.ndarray, ops: np.ndarray, K_cam: np.ndarray, focal: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``root_orient (N, 1, 3)`` and ``trans (N, 1, 3)`` where every fit starts: facing the camera (a half turn about
    x from the model's Y-up, Z-forward frame), at the depth where the rest torso (shoulders to hips) is as long as
    its keypoints ``px (N, M, 2)`` (the mapped keypoints ``ops``), centred on them."""
    dtype, dev = kinematics.dtype, kinematics.device
    N = len(px)
    zero3 = torch.zeros(N, 3, dtype=dtype, device=dev)
    with torch.no_grad():
        rest = (
            kinematics(zero3, torch.zeros(N, 21, 3, dtype=dtype, device=dev), zero3, None)[0]
            .double()
            .cpu()
            .numpy()
        )
    length_3d = np.linalg.norm(rest[[16, 17]].mean(0) - rest[[1, 2]].mean(0))
    m_sh, m_hip = np.isin(ops, (2, 5)), np.isin(ops, (9, 12))
    length_px = np.linalg.norm(px[:, m_sh].mean(1) - px[:, m_hip].mean(1), axis=-1)
    depth = focal * length_3d / np.maximum(length_px, 1.0)
    centre_px = px[:, m_sh | m_hip].mean(1)
    centre_cam = np.stack(
        [
            (centre_px[:, 0] - K_cam[0, 2]) / K_cam[0, 0] * depth,
            (centre_px[:, 1] - K_cam[1, 2]) / K_cam[1, 1] * depth,
            depth,
        ],
        -1,
    )
    flip = np.diag([1.0, -1.0, -1.0])
    torso_rest = np.concatenate([rest[[16, 17]], rest[[1, 2]]]).mean(0)
    trans = centre_cam - flip @ (torso_rest - rest[0]) - rest[0]
    root = torch.tensor([math.pi, 0.0, 0.0], dtype=dtype, device=dev).expand(N, 1, 3)
    return root, torch.as_tensor(trans, dtype=dtype, device=dev)[:, None]


def camera_to_pixels(joints: np.ndarray, intrinsics: Any) -> np.ndarray:
    """``(..., J, 2)`` pixel coordinates of camera-frame points ``joints (..., J, 3)``."""
    cam = np.asarray(joints, dtype=np.float64) @ intrinsics_matrix(intrinsics).T
    return cam[..., :2] / cam[..., 2:]


def keypoints_from_joints(joints: np.ndarray, intrinsics: Any, *, confidence: float = 0.9) -> np.ndarray:
    """``(..., 25, 3)`` BODY_25 keypoints of camera-frame body joints ``(..., 22, 3)`` through the mapping of
    :data:`BODY25_TO_SMPL` (keypoints without a body joint get confidence 0): for tests and for making inputs."""
    px = camera_to_pixels(joints, intrinsics)
    out = np.zeros((*px.shape[:-2], 25, 3))
    for op, (j, _) in BODY25_TO_SMPL.items():
        out[..., op, :2] = px[..., j, :]
        out[..., op, 2] = confidence
    return out
