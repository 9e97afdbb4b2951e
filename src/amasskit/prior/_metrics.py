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
"""

from __future__ import annotations

from typing import Final, Literal, get_args

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["METRICS", "Metric", "pose_distance", "score_threshold"]

Metric = Literal["posendf", "geodesic"]
METRICS: Final[tuple[Metric, ...]] = get_args(Metric)


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
    a, b = np.broadcast_arrays(a, b)
    # component-major float64 copies, so every operation below runs over contiguous memory
    a64 = np.moveaxis(a, -1, 0).astype(np.float64)  # (4, ..., J)
    b64 = np.moveaxis(b, -1, 0).astype(np.float64)
    dot = a64[0] * b64[0]
    dot += a64[1] * b64[1]
    dot += a64[2] * b64[2]
    dot += a64[3] * b64[3]
    # normalised in float64: stored float32 quaternions are unit only to about 1e-7, and acos near 1 would turn
    # that into 4e-4 rad a joint
    norms = _squared(a64) * _squared(b64)
    np.sqrt(norms, out=norms)
    c = np.minimum(np.abs(dot, out=dot) / norms, 1.0)
    terms = np.moveaxis(1.0 - c if metric == "posendf" else np.arccos(c), -1, 0).copy()  # (J, ...)
    total = terms[0].copy()
    for j in range(1, len(terms)):
        total += terms[j]
    return np.asarray(total, dtype=np.float64)


def _squared(x: np.ndarray) -> np.ndarray:
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
