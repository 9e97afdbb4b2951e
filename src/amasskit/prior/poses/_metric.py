"""Distances between poses given as per-joint unit quaternions (XYZW, either sign).

For joints ``j`` of two poses, ``c_j = |<q_j, x_j>| / (|q_j| |x_j|)`` is the cosine of half the angle of the rotation
between them (``q`` and ``-q`` are the same rotation, hence the absolute value; the norms, because stored float32
quaternions are unit only to about 1e-7). A distance is a sum of per-joint terms over a
stated set of joints:

* ``posendf``: ``1 - c_j`` (Pose-NDF's re-ranking metric, summed instead of averaged);
* ``geodesic``: ``acos(c_j)``, half the rotation angle between the joints (NRDF's metric, summed), in radians.

Both are increasing functions of the per-joint half-angle ``theta_j = acos(c_j)``, which is a metric on rotations; the
geodesic distance is therefore a metric on poses, and ``sqrt(2 posendf)`` is one too (a sum of squared chordal
distances ``2 - 2 c_j`` between the nearer signs).

:func:`pose_distance` is the one definition every exact search in amasskit evaluates: float64, the four products of
each joint added left to right, the joints added in order, so the same pair gives the same bits on every route.
:func:`joint_terms` is the same per-joint term in torch, differentiable (the reference fields use it), and
:data:`METRIC_DEFINITIONS` the words a training set records for each.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import torch

from ...choices import Metric, values
from ...errors import InvalidArgumentError

__all__ = ["METRICS", "METRIC_DEFINITIONS", "Metric", "joint_terms", "pose_distance", "score_threshold"]

METRICS: Final[tuple[Metric, ...]] = values(Metric)  # type: ignore[assignment]
#: what each metric sums, as a training set's manifest records it
METRIC_DEFINITIONS: Final[dict[str, str]] = {
    "posendf": "sum_j 1 - |<q_j, x_j>|",
    "geodesic": "sum_j acos |<q_j, x_j>| (half-angles, radians)",
}


def check_metric(metric: str) -> Metric:
    if metric not in METRICS:
        raise InvalidArgumentError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    return metric


def pose_distance(a: np.ndarray, b: np.ndarray, *, metric: str) -> np.ndarray:
    """Distances between ``a (..., J, 4)`` and ``b (..., J, 4)`` (broadcast), summed over the ``J`` joints: ``(...)``
    float64.

    Raises:
        InvalidArgumentError: an unknown metric or a trailing shape that is not ``(J, 4)`` on both.
    """
    metric = check_metric(metric)
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim < 2 or a.shape[-1] != 4 or b.ndim < 2 or b.shape[-1] != 4 or a.shape[-2] != b.shape[-2]:
        raise InvalidArgumentError(
            f"poses must be (..., J, 4) quaternions on both sides, got {a.shape} and {b.shape}"
        )
    # float64 torch on the CPU, component-major: only IEEE-exact operations (+, *, /, sqrt, abs, min), each its own
    # kernel, so an element gets the same bits wherever it sits in a batch (numpy's strided loops took 3x as long)
    ta = torch.from_numpy(np.array(a, dtype=np.float64)).movedim(-1, 0)  # (4, ..., J)
    tb = torch.from_numpy(np.array(b, dtype=np.float64)).movedim(-1, 0)
    dot = ta[0] * tb[0]
    dot += ta[1] * tb[1]
    dot += ta[2] * tb[2]
    dot += ta[3] * tb[3]
    # normalised in float64: stored float32 quaternions are unit only to about 1e-7, and acos near 1 would turn
    # that into 4e-4 rad a joint
    norms = _squared(ta) * _squared(tb)
    norms.sqrt_()
    c = torch.clamp(dot.abs_() / norms, max=1.0).movedim(-1, 0).contiguous()  # (J, ...)
    # the geodesic's arccos in numpy (its SIMD loops treat every element alike, tails included)
    terms = 1.0 - c.numpy() if metric == "posendf" else np.arccos(c.numpy())
    total = terms[0].copy()
    for j in range(1, len(terms)):
        total += terms[j]
    return np.asarray(total, dtype=np.float64)


def joint_terms(cos: torch.Tensor, metric: str) -> torch.Tensor:
    """The metric's per-joint terms of ``cos = |<q_j, x_j>|`` (unit quaternions), any shape, differentiable:
    ``1 - cos`` (posendf) or ``acos(cos)`` (geodesic; clamped just below 1 so that its gradient stays finite)."""
    return torch.acos(cos.clamp(max=1 - 1e-12)) if metric == "geodesic" else 1 - cos


def _squared(x: torch.Tensor) -> torch.Tensor:
    """``x[0]^2 + x[1]^2 + x[2]^2 + x[3]^2``, left to right, over the component axis first."""
    out = x[0] * x[0]
    out += x[1] * x[1]
    out += x[2] * x[2]
    out += x[3] * x[3]
    return out


def score_threshold(tau: np.ndarray, joints: int, *, metric: str) -> np.ndarray:
    """The least ``sum_j c_j`` a pose at distance ``tau`` or less can have (a proven bound; see below; ``c_j`` with
    the norms divided out).

    ``posendf``: exactly ``J - tau``. ``geodesic``: ``acos(c) >= sqrt(2 (1 - c))`` (from ``cos t >= 1 - t^2 / 2``)
    and ``acos(c) >= (pi / 2)(1 - c)`` (the chord of a concave function) per joint, and ``sum sqrt(u_j) >=
    sqrt(sum u_j)``, so ``d >= max(sqrt(2 U), (pi / 2) U)`` with ``U = J - sum_j c_j``: ``U <= min(tau^2 / 2, 2 tau /
    pi)``. (Loose when the distance is spread over many joints: the geodesic search evaluates more candidates.)
    """
    tau = np.asarray(tau, dtype=np.float64)
    slack = tau if check_metric(metric) == "posendf" else np.minimum(tau * tau / 2.0, 2.0 * tau / np.pi)
    return np.where(np.isfinite(tau), joints - slack, -np.inf)
