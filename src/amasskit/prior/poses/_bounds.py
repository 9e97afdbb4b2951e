"""The exact search's bounds, each proven and each tested on every pair against float64 truth
(``tests/prior/test_knn.py``): per (query, tile), an upper bound on ``S = sum_j |p_j|`` (:func:`tile_bounds`) and,
for the geodesic, the concave terms' factor (:func:`spread_factors`); per pair, the per-joint floor of the torch
second stage (:func:`joint_floor`) and the compiled stage's constants (:func:`kernel_terms`, :func:`kernel_ulow`,
:func:`kernel_limits`); and the roundings they allow for (:func:`scan_tolerances`, :func:`rounding`)."""

from __future__ import annotations

import numpy as np
import torch

from . import _kernels
from ._tiles import Tiles

__all__ = [
    "SLACK",
    "SUM_ROUNDING",
    "TERM_ROUNDING",
    "U32",
    "U_TF32",
    "joint_affine",
    "joint_floor",
    "kernel_limits",
    "kernel_terms",
    "kernel_ulow",
    "rounding",
    "scan_tolerances",
    "spread_factors",
    "tile_bounds",
]

SLACK = 1e-9  # on the score: covers the float64 rounding of the bounds and of the exact distances
U32 = 2.0**-24
U_TF32 = 2.0**-11
TERM_ROUNDING = 2e-6  # see the second stage
SUM_ROUNDING = (
    4e-6  # relative, of the second stage's float32 sums of J <= 51 non-negative terms (J u <= 3.1e-6)
)


def tile_bounds(tiles: Tiles, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Per query and tile: ``upper (M, T)`` bounds ``S = sum_j |p_j|`` over every pose of the tile, ``correction
    (M, T)`` bounds ``S - L`` (``L = <Q, X>``), and the queries' largest norm error ``||q_j| - 1|``.

    ``L <= sum_j <q_j, m_j> + |q_j| r_j`` over a tile (two matrix products), and ``L = (|Q|^2 + |X|^2 - |Q - X|^2) /
    2`` with ``|Q - X| >= |Q - M| - R`` (the tile's ball): tight where the tile's poses are alike, as the tree that
    orders them makes them. The correction ``S - L = 2 sum_j max(0, -p_j)``, with ``w >= 0`` on both sides: ``-p_j <=
    |q_j| |x_j| (sin a sin a' - cos a cos a') = -|q_j| |x_j| cos(a + a')`` (``a`` the half-angles), and about the
    tile's centre ``-p_j <= |q_j| r_j - <q_j, m_j>``. Only joints whose half-angles can add up past ``pi / 2`` can
    contribute: most poses have none. In float64 torch (vectorised transcendental functions: numpy's took as long as
    the matrix products they save).
    """
    M = len(queries)
    dev = tiles.flat.device
    f64 = torch.float64
    q64 = torch.from_numpy(queries).to(dev, f64)  # (M, J, 4)
    qn = torch.linalg.vector_norm(q64, dim=-1)  # (M, J)
    centres = torch.from_numpy(tiles.centres).to(dev)  # (T, J, 4)
    radii = torch.from_numpy(tiles.radii).to(dev)  # (T, J)
    T = len(centres)
    inner = q64.reshape(M, -1) @ centres.reshape(T, -1).T
    upper_l = inner + qn @ radii.T  # (M, T)
    # |Q - M|^2 expanded in float64: 1e-12 covers its rounding
    q_sq = (q64.reshape(M, -1) ** 2).sum(1)
    m_sq = (centres.reshape(T, -1) ** 2).sum(1)
    gap = torch.sqrt((q_sq[:, None] + m_sq[None] - 2 * inner - 1e-12).clamp_min(0.0))
    gap = (gap - torch.from_numpy(tiles.ball_radii).to(dev)[None]).clamp_min(0.0)
    norms = torch.from_numpy(tiles.norms).to(dev)[None]
    by_ball = (q_sq[:, None] + norms**2 - gap * gap) / 2 * (1 + 1e-12) + 1e-12
    upper_l = torch.minimum(upper_l, by_ball)
    half_q = torch.atan2(torch.linalg.vector_norm(q64[..., :3], dim=-1), q64[..., 3])  # (M, J)
    half_x = torch.from_numpy(tiles.half_angles).to(dev)  # (T, J)
    correction = torch.zeros(M, T, dtype=f64, device=dev)
    rows_j, cols_j = torch.nonzero(half_q + half_x.max(0).values[None] >= np.pi / 2 - 1e-9, as_tuple=True)
    if rows_j.numel():
        qj = q64[rows_j, cols_j]  # (n, 4)
        P = torch.einsum("nc,tnc->nt", qj, centres[:, cols_j])  # <q_j, m_j> per (entry, tile)
        norm_q = qn[rows_j, cols_j][:, None]
        by_centre = norm_q * radii[:, cols_j].T - P
        by_angle = -torch.cos(torch.clamp(half_q[rows_j, cols_j][:, None] + half_x[:, cols_j].T, max=np.pi))
        by_angle = by_angle * norm_q * torch.from_numpy(tiles.joint_norms).to(dev)[:, cols_j].T
        terms = 2.0 * torch.minimum(by_centre.clamp_min(0.0), (by_angle + 1e-12).clamp_min(0.0))  # (n, T)
        correction.index_add_(0, rows_j, terms)
    upper = upper_l + correction  # bound on S over each tile
    return upper.cpu().numpy(), correction.cpu().numpy(), float((qn - 1).abs().max())


def spread_factors(tiles: Tiles, queries: np.ndarray) -> np.ndarray:
    """``rho (M, T)`` with ``geodesic(q, x) >= rho (J - S)`` for every pose ``x`` of each tile (``S = sum_j c_j``).

    With ``u_j = 1 - c_j`` and ``U = sum_j u_j = J - S``: ``acos(1 - u)`` is concave in ``u`` and 0 at 0, so where
    every ``u_j <= m``, ``acos(1 - u_j) >= u_j acos(1 - m) / m`` and ``geodesic >= U acos(1 - m) / m``. Over a tile,
    ``u_j = min_s |q_j - s x_j|^2 / 2`` (unit quaternions) is at most ``(min_s |q_j - s m_j| + r_j)^2 / 2`` about
    the joint's centre ``m_j`` and radius ``r_j``; ``m`` is its largest over the joints (at most 1). Where a distance
    is spread over many joints this is up to ``sqrt(J)`` tighter than the bound from ``U`` alone. Computed in float32
    with its rounding added to ``m`` (an ``m`` too large only loosens the bound: ``acos(1 - m) / m`` falls with
    ``m``).
    """
    M = len(queries)
    T = len(tiles.centres)
    qn = queries / np.linalg.norm(queries.astype(np.float64), axis=-1, keepdims=True)
    Qj = torch.from_numpy(np.ascontiguousarray(qn.transpose(1, 0, 2), dtype=np.float32))  # (J, M, 4)
    Mj = torch.from_numpy(
        np.ascontiguousarray(tiles.centres.transpose(1, 2, 0), dtype=np.float32)
    )  # (J, 4, T)
    msq = (Mj * Mj).sum(1, keepdim=True)  # (J, 1, T)
    radii = torch.from_numpy(np.ascontiguousarray(tiles.radii.T, dtype=np.float32))[:, None]  # (J, 1, T)
    cap = np.empty((M, T))
    for a in range(0, M, 512):  # (J, 512, T) temporaries
        p = torch.bmm(Qj[:, a : a + 512], Mj).abs_()
        # |q - s m|^2 = 1 + |m|^2 - 2 s <q, m> (the nearer sign); float32 rounding below 1e-6 before and after
        # the root
        chord = (1.0 + msq - 2.0 * p).clamp_(min=0.0).add_(1e-6).sqrt_().add_(radii).add_(1e-6)
        cap[a : a + 512] = (chord * chord * 0.5).amax(0).clamp_(max=1.0).numpy()
    cap = np.maximum(cap * (1 + 1e-6), 1e-30)
    # acos(1 - m) = 2 asin(sqrt(m / 2)), accurate for small m
    return 2.0 * np.arcsin(np.sqrt(cap / 2.0)) / cap * (1 - 1e-12)


def joint_floor(products: torch.Tensor, metric: str, shrink: float, joint_error: float) -> torch.Tensor:
    """A lower bound on the distance of each pair from its float32 joint products ``(J, m, n)`` -> ``(m, n)``.

    ``joint_error`` bounds each product's rounding and ``shrink`` (``(1 - eps)^2``) the quaternions' norms, so
    ``c' = min(1, (|p_j| + joint_error) / shrink)`` is at least the normalised ``|p_j|``; the terms are at least
    ``1 - c'`` (posendf) and, for the geodesic, with ``v = 2 - 2 c'``, ``sqrt(v) (1 + v/24 + 3v^2/640 + 5v^3/7168)``:
    the series ``acos(1 - u) = sqrt(2u) (1 + u/12 + 3u^2/160 + ...)`` has no negative term, so cut it is a lower
    bound (0.3% under ``t`` at pi / 2; the chord ``sqrt(v) = 2 sin(t / 2)`` alone is 11% under, which let a query far
    from every pose pass thousands; :data:`amasskit.prior.poses._kernels.SERIES`, rounded down). Computed as one affine map
    and a clamp at 0 (fewer passes over the block than the steps one by one); the float32 rounding of its constants
    and of the map is at most ``8u (|a| + |scale c|) <= 2e-6`` of the argument and is taken off before the square
    root (which would magnify it near 0 to 5e-4); the series and the sum round by at most ``(5 + J) u`` of the total,
    taken off after.
    """
    offset, scale = joint_affine(metric, shrink, joint_error)
    terms = torch.add(offset, products.abs_(), alpha=-scale).clamp_(min=0.0)
    if metric != "posendf":
        a0, a1, a2, a3 = (float(c) for c in _kernels.SERIES)
        series = ((terms * a3 + a2) * terms + a1).mul_(terms).add_(a0)
        terms.sqrt_().mul_(series)
    return terms.sum(0).mul_(1 - SUM_ROUNDING).sub_(1e-6)


def kernel_terms(
    metric: str, shrink: float, joint_error: float, eps: float
) -> tuple[float, float, float, float]:
    """``(offset, scale, uoff, uscale)`` for the compiled stage (:func:`amasskit.prior.poses._kernels.joint_stage`): the
    terms of :func:`joint_floor`, and ``uoff - uscale |p_j| >= u_j = 1 - c_j``: ``c_j >= (|p_j| - joint_error) /
    (1 + eps)^2`` (each norm within ``eps`` of 1), with ``uoff`` rounded up by more than the float32 evaluation's
    rounding (three roundings of numbers at most 2: 4e-7) and ``uscale`` rounded down."""
    offset, scale = joint_affine(metric, shrink, joint_error)
    inv = 1.0 / (1.0 + eps) ** 2
    uoff = np.float32(1.0 + joint_error * inv + 4e-7)
    uoff = np.nextafter(uoff, np.float32(np.inf)) if uoff < 1.0 + joint_error * inv + 4e-7 else uoff
    uscale = np.float32(inv * (1 - 1e-7))
    uscale = np.nextafter(uscale, np.float32(0)) if uscale > inv * (1 - 1e-7) else uscale
    return offset, scale, float(uoff), float(uscale)


def kernel_ulow(
    tiles: Tiles,
    need: np.ndarray,
    t: int,
    at_centre: np.ndarray,
    to_score: np.ndarray,
    q_norm: np.ndarray,
    eta: np.ndarray,
    correction: np.ndarray,
    shrink: float,
    J: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(ulow0, uslope)`` float32 for queries ``need`` and tile ``t``: ``U_low = ulow0 - uslope h`` bounds ``U = J -
    sum_j c_j`` from below for a first-stage value ``h`` (``S <= (<q, c> + eta + correction + to_score h) /
    shrink``).

    The float32 evaluation ``ulow0 - uslope h`` rounds ``h``, the product and the difference: at most ``4u (|ulow0|
    + |uslope h|)``, and ``|uslope h| <= (|q| extent + eta) / shrink``; that is taken off ``ulow0`` (rounded down)."""
    a = (at_centre[need] + eta[need, t] + correction[need, t]) / shrink
    slope = to_score[need] / shrink
    base = J - a
    big = (q_norm[need] * tiles.extent + eta[need, t]) / shrink * 1.01 + 1e-6
    ulow0 = base - (4 * U32 * (np.abs(base) + big) + 1e-9)
    u0 = ulow0.astype(np.float32)
    u0 = np.where(u0 > ulow0, np.nextafter(u0, np.float32(-np.inf)), u0)
    return u0, slope.astype(np.float32)


def scan_tolerances(index_norm_error: float, query_norm_error: float, u: float) -> tuple[float, float, float]:
    """``(eps, shrink, joint_error)`` of a scan: ``eps`` bounds every quaternion's norm error (the index's and the
    queries'); the distances divide the norms out of each ``|p_j|`` (every norm within ``eps`` of 1), so a
    normalised sum is at most the raw one over ``shrink = (1 - eps)^2`` (rounded down), and raw bounds are compared
    with ``thr shrink``; ``joint_error`` bounds the rounding of each float32 joint product (``u``: the device's unit
    roundoff)."""
    eps = max(index_norm_error, query_norm_error) + 1e-15
    shrink = (1 - eps) ** 2 * (1 - 1e-15)
    joint_error = 4 * u / (1 - 4 * u) * (1 + eps) ** 2 + 1e-30
    return eps, shrink, joint_error


def joint_affine(metric: str, shrink: float, joint_error: float) -> tuple[float, float]:
    """``(offset, scale)``: a joint's term (before the square root, for the geodesic) is at least ``max(offset -
    scale |p_j|, 0)`` (see :func:`joint_floor`)."""
    scale = (1.0 if metric == "posendf" else 2.0) / shrink
    return scale * (shrink - joint_error) - TERM_ROUNDING, scale


def kernel_limits(limit: np.ndarray) -> np.ndarray:
    """The compiled stage's limits ``(m,)`` float32: a pair is kept while its float32 sum of terms is at most this,
    which is ``limit`` raised by what the sum's rounding can add (as :func:`joint_floor` lowers the sum), rounded
    up."""
    raised = (np.asarray(limit, dtype=np.float64) + 1e-6) / (1 - SUM_ROUNDING)
    # finite (the kernel is compiled on the promise of no infinities; no limit is needed past any distance, at most
    # J pi / 2), and below the kernel's marker for a lane without a candidate (1e30)
    raised = np.minimum(raised, 1e20)
    out = raised.astype(np.float32)
    return np.where(out < raised, np.nextafter(out, np.float32(np.inf)), out)


def rounding(device: torch.device) -> float:
    """Unit roundoff of the float32 matrix product's inputs on ``device`` (TF32 where CUDA may use it)."""
    if device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        return U_TF32
    return U32
