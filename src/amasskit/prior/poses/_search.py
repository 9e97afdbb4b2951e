"""Exact k-nearest clean poses under the pose metrics, without an approximate index.

A search equals brute force over the whole clean set (the same neighbours, ordered by distance then id, and the same
float64 distances from :func:`~amasskit.prior.poses._metric.pose_distance`); what it skips, it skips on a proven bound.

With ``p_j = <q_j, x_j>`` the joint inner products of a query ``q`` and a clean pose ``x`` (``J`` joints), the
distances depend on ``S = sum_j |p_j|`` (``posendf = J - S``) or are bounded by it (``geodesic``: see
:func:`~amasskit.prior.poses._metric.score_threshold`), so a pose can be among the ``k`` nearest only if ``S >= thr(q)``,
``thr`` following from the ``k``-th smallest distance found so far. ``S`` itself is not one matrix product, but

    ``S = L + 2 sum_j max(0, -p_j)`` with ``L = sum_j p_j = <Q, X>`` (the 4J-vectors; one matrix product),

and over a tile of consecutive clean poses with per-joint centres ``m_j`` and radii ``r_j >= |x_j - m_j|``:
``-p_j <= |q_j| r_j - <q_j, m_j>`` and ``L <= sum_j (<q_j, m_j> + |q_j| r_j)``; with ``w >= 0`` on both sides
``-p_j <= -|q_j| |x_j| cos(a + a')`` (``a`` the half-angles), which is 0 for most human joints. So per (query, tile):
a bound ``B`` on the correction and an upper bound on ``S``; a tile whose bound stays under ``thr`` is skipped. In
the others, a first stage bounds ``L`` for every pair from a cheap product whose error is bounded:

* on the CPU, integers (``products="int8"``): the poses about their mean, scaled per coordinate into [-127, 127] and
  split into two int8 parts, multiplied exactly in int32 (two products, 84 and 168 terms a pair for 21 joints; about
  2.6-2.8x the speed of float32 products on a CPU with VNNI, measured); the bound covers the low parts' product left
  out and the parts' rounding (Cauchy-Schwarz on per-tile norms; about 1e-3 of ``L``). See :class:`_Int8Poses`;
* otherwise (a GPU, or ``products="float32"``), float32 products about the mean pose, ``<q, x> = <q, c> +
  <[q - c, 1], [x - c, <c, x - c>]>``, with their rounding bounded (``gamma_K |Q'| |X'|``, larger where CUDA may use
  TF32, and the rounding of the stored rows; about 1e-5 where the poses are alike).

Only the poses whose bound on ``L`` reaches ``thr - B`` go on; the norms of the stored quaternions (1 to about 1e-7)
are divided out with a factor ``(1 - eps)^2``. For the geodesic, ``thr`` is also raised per (query, tile) by a bound
from the concave terms: where no joint's ``u_j = 1 - c_j`` can exceed ``m`` over the tile, ``geodesic >= U acos(1 -
m) / m`` with ``U = J - S`` (:func:`_spread_factors`; up to ``sqrt(J)`` tighter than the bound from ``U`` alone when a
distance is spread over the joints). The candidates then go through a second stage that bounds every joint's term in
float32 (per-joint products; for the geodesic ``acos(1 - u) >= sqrt(2u) (1 + u/12 + 3u^2/160 + 5u^3/896)``, the cut
series, 0.3% under; the rounding taken off before the square root):

* with numba (the ``search`` extra; CPU), a compiled loop (:mod:`amasskit.prior.poses._kernels`) over 16 poses at a time
  that adds the most varied joints first and stops once every pose of the 16 is past the limit, the joints not yet
  added bounded from the first stage's value (``U >= U_low``) and the tile's ball around each of them (``lo_j <= u_j
  <= hi_j``): with ``left = (U_low - sum u_j)^+``, they are worth ``max(r left, Lg + s (left - Lu)^+)`` by the
  concavity of the terms (:func:`amasskit.prior.poses._kernels.joint_stage`). About 6.5 joints a block of 16 decide on the
  benchmark's NRDF search, not 21 (8.5 with ``rho left`` alone);
* otherwise, in torch on whole blocks, for the rows where many pass.

The survivors are evaluated exactly in float64, in batches.

The tiles hold alike poses (the leaves of a principal-axis tree, :func:`_tile_order`), so a tile is also skipped by
the triangle inequality on its ball (``|Q - X| >= |Q - M| - R``). Tiles are visited best bound first, so ``thr`` rises
early; each query starts from the exact distances to the best poses of its most promising tile and, with ``hints``
(each query's source pose, as the training-data job has), to the poses around its source. Measured
(``benchmarks/prior_data.py``, benchmarks/RESULTS.md; a dense synthetic set): for Pose-NDF's metric and noise the
search scans 38% of the pairs and evaluates about 100 poses a query exactly, 4-8x the speed of Pose-NDF's (inexact)
faiss procedure on 2 CPU cores; for NRDF's metric and noise about 2x (see RESULTS.md for the runs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import InvalidArgumentError
from . import _kernels
from ._metric import check_metric, pose_distance, score_threshold

logger = logging.getLogger(__name__)

__all__ = ["PoseIndex", "knn", "knn_brute_force"]

_STAGE_TWO_ROWS = 32
_QUERY_BLOCK = 256  # float32 products: a block's output stays in cache
_QUERY_BLOCK_INT8 = 1024  # integer products: fewer, larger calls (measured best on the benchmark's set)
_QUERIES_AT_ONCE = 4096
_BATCH = 4096
_EXACT_PIECE = 1024
_SLACK = 1e-9  # on the score: covers the float64 rounding of the bounds and of the exact distances
_U32 = 2.0**-24
_TERM_ROUNDING = 2e-6  # see the second stage
_SUM_ROUNDING = (
    4e-6  # relative, of the second stage's float32 sums of J <= 51 non-negative terms (J u <= 3.1e-6)
)
_U_TF32 = 2.0**-11


@dataclass(frozen=True, eq=False)
class PoseIndex:
    """A clean pose set prepared for exact search: ``poses (N, J, 4)`` float32 (kept as given when already float32
    and contiguous: a memory map stays one), tiles of ``tile`` consecutive poses with per-joint centres ``(T, J, 4)``
    and radii ``(T, J)`` (float64), and the poses as a ``(N, 4 J)`` float32 tensor on ``device``."""

    poses: np.ndarray
    tile: int
    centres: np.ndarray
    radii: np.ndarray
    norms: np.ndarray  # (T,) the largest |X| (4J-vector) in each tile
    ball_radii: np.ndarray  # (T,) the largest |X - M| in each tile (M the tile's mean, ``centres``)
    half_angles: np.ndarray  # (T, J) the largest half-angle atan2(|v|, w) of each joint in each tile
    joint_norms: np.ndarray  # (T, J) the largest |x_j| in each tile
    norm_error: float  # the largest ||x_j| - 1|
    order: np.ndarray  # (N,) int64: the clean pose (its id in ``poses``) at each position of the tiles
    flat: torch.Tensor  # (N, 4J) float32 on the device, in tile order
    centre: np.ndarray  # (4J,) float64: the mean pose (as a 4J-vector)
    extent: float  # the largest |X - centre| (4J-vectors)
    joint_order: np.ndarray  # (J,) the joints, most varied first (the kernel adds them in this order)
    # the first stage's products: exact integer parts (CPU), else float32 about the mean; one of the two is set
    int8: _Int8Poses | None = None
    centred: _CentredPoses | None = None
    # the per-joint second stage's poses, in tile order: blocks of 16 for the compiled kernel (numba, on the CPU), or
    # else (J, 4, N) float32 on the device for torch; one of the two is set
    blocks: np.ndarray | None = None
    joint_major: torch.Tensor | None = None

    @classmethod
    def build(
        cls,
        poses: np.ndarray,
        *,
        tile: int = 1024,
        device: str | torch.device = "cpu",
        products: str = "auto",
        joint_stage: str = "auto",
    ) -> PoseIndex:
        """``products``: how the first stage bounds every pair: ``int8`` (two-part integer products, exact in int32,
        with a proven bound on what the parts leave out: about 2.6-2.8x faster than float32 on a CPU with VNNI),
        ``float32``, or ``auto`` (``int8`` on the CPU where torch has integer products, else ``float32``). The
        results are the same either way. ``joint_stage``: how the second stage bounds each joint's term: ``numba`` (a
        compiled loop that stops at the first joints that decide, :mod:`amasskit.prior.poses._kernels`; CPU, tiles a
        multiple of 16 poses, the ``search`` extra), ``torch``, or ``auto`` (``numba`` where it can run). The results
        are again the same.

        The tiles hold poses that are alike (the leaves of a tree that splits the set at the median of its principal
        axis, :func:`_tile_order`), so that whole tiles can be skipped; ids stay those of ``poses``.

        Raises: InvalidArgumentError: not ``(N, J, 4)``, empty, or not finite, an unknown ``products`` or
        ``joint_stage``, or one this machine cannot run."""
        poses = np.asarray(poses)
        if poses.ndim != 3 or poses.shape[-1] != 4 or len(poses) == 0:
            raise InvalidArgumentError(f"clean poses must be a non-empty (N, J, 4) array, got {poses.shape}")
        if poses.dtype != np.float32 or not poses.flags.c_contiguous:
            poses = np.ascontiguousarray(poses, dtype=np.float32)
        if (poses[..., 3] < 0).any():  # the bounds take w >= 0; the distances do not depend on the sign
            poses = np.where(poses[..., 3:] < 0, -poses, poses).astype(np.float32)
        if tile < 1:
            raise InvalidArgumentError(f"tile must be at least 1, got {tile}")
        if products not in ("auto", "int8", "float32"):
            raise InvalidArgumentError(f"products must be auto, int8 or float32, got {products!r}")
        if joint_stage not in ("auto", "numba", "torch"):
            raise InvalidArgumentError(f"joint_stage must be auto, numba or torch, got {joint_stage!r}")
        on_cpu = torch.device(device).type == "cpu"
        if products == "int8" and not on_cpu:
            raise InvalidArgumentError("int8 products run on the CPU only; use products='float32' on a GPU")
        kernel_fits = on_cpu and tile % _kernels.LANES == 0
        if joint_stage == "numba" and not (kernel_fits and _kernels.available()):
            raise InvalidArgumentError(
                "joint_stage='numba' needs numba (pip install 'amasskit[search]'), the CPU and a tile that is a "
                f"multiple of {_kernels.LANES}"
            )
        use_kernel = joint_stage != "torch" and kernel_fits and _kernels.available()
        N, J = poses.shape[:2]
        for b0 in range(0, N, 65536):
            if not np.isfinite(poses[b0 : b0 + 65536]).all():
                bad = b0 + int(np.flatnonzero(~np.isfinite(poses[b0 : b0 + 65536]).all((1, 2)))[0])
                raise InvalidArgumentError(f"clean pose {bad} holds non-finite values")
        order = _tile_order(poses.reshape(N, 4 * J), tile)
        poses_in_order = poses[order]
        starts = np.arange(0, N, tile)
        ball = np.empty(len(starts))
        centres = np.empty((len(starts), J, 4))
        radii = np.empty((len(starts), J))
        norms = np.empty(len(starts))
        half = np.empty((len(starts), J))
        jnorm = np.empty((len(starts), J))
        norm_error = extent = 0.0
        centre = np.zeros(4 * J)
        for s in starts:  # in tiles: memory stays bounded for any set
            centre += poses_in_order[s : s + tile].reshape(-1, 4 * J).astype(np.float64).sum(0)
        centre /= N
        for t, s in enumerate(starts):
            x = poses_in_order[s : s + tile].astype(np.float64)
            centres[t] = x.mean(0)
            radii[t] = np.sqrt(((x - centres[t]) ** 2).sum(-1)).max(0)
            norms[t] = np.sqrt((x * x).sum((1, 2))).max()
            ball[t] = np.sqrt(((x - centres[t]) ** 2).sum((1, 2))).max()
            half[t] = np.arctan2(np.sqrt((x[..., :3] ** 2).sum(-1)), x[..., 3]).max(0)
            xn = np.sqrt((x * x).sum(-1))
            extent = max(extent, float(np.sqrt(((x.reshape(len(x), -1) - centre) ** 2).sum(1)).max()))
            jnorm[t] = xn.max(0)
            norm_error = max(norm_error, float(np.abs(xn - 1).max()))
        grow = 1 + 1e-12  # the float64 rounding of the bounds themselves
        flat = torch.from_numpy(poses_in_order.reshape(N, 4 * J)).to(device)
        if use_kernel:
            blocks, joint_major = _kernels.to_blocks(poses_in_order), None
        else:
            blocks = None
            joint_major = torch.from_numpy(np.ascontiguousarray(poses_in_order.transpose(1, 2, 0))).to(device)
        # unit quaternions with w >= 0: a joint's spread about its mean is 1 - |mean|^2, largest first
        joint_order = np.argsort(np.linalg.norm(centre.reshape(J, 4), axis=1), kind="stable")
        in_order = poses_in_order.reshape(N, 4 * J)
        int8 = _Int8Poses.build(in_order, tile, centre) if products != "float32" and on_cpu else None
        centred = _CentredPoses.build(in_order, tile, centre, device) if int8 is None else None
        del poses_in_order, in_order
        return cls(poses, tile, centres, radii * grow + 1e-12, norms * grow, ball * grow + 1e-12, half * grow + 1e-12,
                   jnorm * grow, norm_error, order, flat, centre, extent * grow + 1e-12, joint_order, int8, centred, blocks,
                   joint_major)  # fmt: skip

    @property
    def size(self) -> int:
        return int(self.poses.shape[0])

    @property
    def joints(self) -> int:
        return int(self.poses.shape[1])


def _tile_order(flat: np.ndarray, tile: int) -> np.ndarray:
    """An order of the poses ``flat (N, D)`` whose consecutive runs of ``tile`` hold poses that are alike: the
    leaves of a tree that splits each node at (a multiple of ``tile`` next to) the median of its projections on its
    principal axis (``(N,)`` int64; deterministic). Only the speed of a search depends on it: a tile whose poses lie
    in a small ball is skipped by a query far from it."""
    N = len(flat)
    order = np.arange(N)
    todo = [(0, N)]
    block = 65536  # the node's poses are read in blocks: memory stays bounded for any set
    while todo:
        a, b = todo.pop()
        if b - a <= tile:
            continue
        ids = order[a:b]
        mean = sum(
            flat[ids[s : s + block]].sum(0, dtype=np.float64) for s in range(0, len(ids), block)
        ) / len(ids)
        cov = np.zeros((flat.shape[1], flat.shape[1]))
        for s in range(0, len(ids), block):
            x = flat[ids[s : s + block]] - mean
            cov += x.T @ x
        axis = np.linalg.eigh(cov)[1][:, -1]
        proj = np.concatenate([(flat[ids[s : s + block]] - mean) @ axis for s in range(0, len(ids), block)])
        half = max(tile, ((b - a) // 2 + tile // 2) // tile * tile)
        # only the split matters (the halves are split in turn): a partition, not a sort
        order[a:b] = ids[np.argpartition(proj, half)]
        todo += [(a, a + half), (a + half, b)]
    return order


# The first stage's products in integers. With a centre ``c`` and per-coordinate radii ``r`` of the clean set (4J
# coordinates), ``A = 127 (x - c) / r`` lies in [-127, 127] and is split into two int8 parts, ``A = hi + lo / 254 + e``
# with ``|e| <= 1 / 508`` a coordinate; a query's ``B = (q * r) / s`` (``s = max |q * r| / 127``) likewise. Then
#
#     ``<q, x> = <q, c> + (s / 127) <B, A>``   and
#     ``<B, A> = G1 + G2 / 254 + R``, ``G1 = <B_hi, A_hi>``, ``G2 = <B_lo, A_hi> + <B_hi, A_lo>`` (exact in int32),
#     ``R = <B_lo, A_lo> / 254^2 + <e_B, A> + <B_hi + B_lo / 254, e_A>``, so
#     ``|R| <= |B_lo| |A_lo| / 254^2 + |e_B| |A| + |B_hi + B_lo / 254| |e_A|`` (Cauchy-Schwarz),
#
# the norms on the clean side taken as their largest over a tile. ``H = 254 G1 + G2`` is compared, in integers, with
# the floor each query's threshold implies. The float64 arithmetic that makes ``A``, ``B`` and the floors is covered by
# a relative slack of 1e-9 of ``|B| |A|`` (its rounding is about 1e-15 of it).
_I8 = 127
_LOW = 254


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a (..., D)`` float64 in [-127, 127] as ``hi + lo / 254 + e``: ``hi``, ``lo`` int8 and ``e`` float64."""
    hi = np.rint(a)
    lo = np.rint((a - hi) * _LOW)
    return hi.astype(np.int8), lo.astype(np.int8), a - hi - lo / _LOW


def _grown(norm: np.ndarray) -> np.ndarray:
    return norm * (1 + 1e-9) + 1e-12


@dataclass(frozen=True, eq=False)
class _Int8Poses:
    """The clean poses' integer parts ``[A_hi | A_lo] (N, 2D)`` int8, the centre and radii ``(D,)``, and per tile the
    largest ``|A|``, ``|A_lo|`` and ``|e_A|`` ``(T,)``."""

    parts: torch.Tensor
    centre: np.ndarray
    radii: np.ndarray
    norm_a: np.ndarray
    norm_lo: np.ndarray
    norm_e: np.ndarray

    @classmethod
    def build(cls, flat: np.ndarray, tile: int, centre: np.ndarray) -> _Int8Poses | None:
        """``flat (N, D)`` float32 and its mean ``centre``; None where torch has no integer products here or int32
        could overflow."""
        N, D = flat.shape
        if 2 * D * _I8 * _I8 * _LOW >= 2**31 or not hasattr(torch, "_int_mm"):
            return None
        try:
            torch._int_mm(torch.zeros((1, D), dtype=torch.int8), torch.zeros((D, 1), dtype=torch.int8))
        except RuntimeError:  # integer products not built into this torch
            return None
        radii = np.zeros(D)
        for s in range(0, N, 65536):  # in blocks: memory stays bounded for any set
            radii = np.maximum(radii, np.abs(flat[s : s + 65536] - centre).max(0))
        radii = np.where(radii > 0, radii, 1.0)
        parts = np.empty((N, 2 * D), np.int8)
        T = -(-N // tile)
        norm_a, norm_lo, norm_e = np.zeros(T), np.zeros(T), np.zeros(T)
        for t in range(T):
            a = (flat[t * tile : (t + 1) * tile] - centre) * (_I8 / radii)
            # |x - c| <= r, so nothing is clipped but the float64 rounding; e keeps the identity exact either way
            hi, lo, e = _split(np.clip(a, -_I8, _I8))
            e += a - np.clip(a, -_I8, _I8)
            parts[t * tile : (t + 1) * tile, :D], parts[t * tile : (t + 1) * tile, D:] = hi, lo
            norm_a[t] = np.sqrt((a * a).sum(1)).max()
            norm_lo[t] = np.sqrt((lo.astype(np.float64) ** 2).sum(1)).max()
            norm_e[t] = np.sqrt((e * e).sum(1)).max()
        return cls(torch.from_numpy(parts), centre, radii, _grown(norm_a), _grown(norm_lo), _grown(norm_e))

    def queries(self, queries: np.ndarray) -> _Int8Queries:
        """``queries (M, J, 4)`` float32 (``w >= 0``) in the same integer form."""
        q = queries.reshape(len(queries), -1).astype(np.float64)
        scaled = q * self.radii
        scale = np.abs(scaled).max(1) / _I8
        scale = np.where(scale > 0, scale, 1.0)
        b = scaled / scale[:, None]
        hi, lo, e = _split(np.clip(b, -_I8, _I8))
        e += b - np.clip(b, -_I8, _I8)
        whole = hi + lo / _LOW
        return _Int8Queries(
            hi=torch.from_numpy(hi),
            lo_hi=torch.from_numpy(np.concatenate([lo, hi], 1)),
            to_score=scale / _I8 / _LOW,  # H -> <q, x - c>
            at_centre=q @ self.centre,
            norm_b=_grown(np.sqrt((b * b).sum(1))),
            norm_lo=_grown(np.sqrt((lo.astype(np.float64) ** 2).sum(1))),
            norm_e=_grown(np.sqrt((e * e).sum(1))),
            norm_whole=_grown(np.sqrt((whole * whole).sum(1))),
        )

    def error(self, qi: _Int8Queries) -> np.ndarray:
        """``(M, T)``: the bound on ``|<q, x> - <q, c> - to_score H|`` over each tile, in score units."""
        r = (
            np.outer(qi.norm_lo, self.norm_lo) / (_LOW * _LOW)
            + np.outer(qi.norm_e, self.norm_a)
            + np.outer(qi.norm_whole, self.norm_e)
            + 1e-9 * np.outer(qi.norm_b, self.norm_a)
        )
        return r * (qi.to_score * _LOW)[:, None]

    def products(
        self, qi: _Int8Queries, rows: slice | torch.Tensor, start: int, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``G1, G2`` int32 ``(m, stop - start)`` of queries ``rows`` and poses ``start:stop``."""
        D = self.centre.shape[0]
        block = self.parts[start:stop]
        return torch._int_mm(qi.hi[rows], block[:, :D].T), torch._int_mm(qi.lo_hi[rows], block.T)

    @staticmethod
    def hit_rows(g1: torch.Tensor, g2: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
        """The rows with a pose whose ``H`` can reach the row's floor: ``max H <= 254 max G1 + max G2`` (most rows
        are dropped without forming ``H``)."""
        return torch.nonzero(g1.amax(1).mul_(_LOW).add_(g2.amax(1)) >= floor).squeeze(1)

    def candidates(
        self, qi: _Int8Queries, rows: slice | torch.Tensor, start: int, stop: int, floor: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows of a block (queries ``rows`` x poses ``start:stop``) with a pose whose ``H = 254 G1 + G2``
        reaches its row's ``floor`` (int32), and for those rows which poses do: ``(hit_rows, passed)``."""
        g1, g2 = self.products(qi, rows, start, stop)
        hit_rows = self.hit_rows(g1, g2, floor)
        if not hit_rows.numel():
            return hit_rows, torch.empty((0, stop - start), dtype=torch.bool)
        h = g1[hit_rows].mul_(_LOW).add_(g2[hit_rows])
        return hit_rows, h >= floor[hit_rows, None]


@dataclass(frozen=True, eq=False)
class _Int8Queries:
    hi: torch.Tensor  # (M, D) int8
    lo_hi: torch.Tensor  # (M, 2 D) int8: [B_lo | B_hi], against [A_hi | A_lo]
    to_score: np.ndarray  # (M,)
    at_centre: np.ndarray  # (M,) <q, c>
    norm_b: np.ndarray
    norm_lo: np.ndarray
    norm_e: np.ndarray
    norm_whole: np.ndarray

    def floors(self, rows: np.ndarray, floor: np.ndarray, error: np.ndarray) -> torch.Tensor:
        """The least ``H`` of a pose whose ``<q, x>`` can reach ``floor`` (``error`` the bound over its tile), as
        int32 (one lower, for the float64 rounding of the floor)."""
        h = (floor - self.at_centre[rows] - error) / self.to_score[rows]
        h = np.floor(np.nan_to_num(h, nan=-np.inf, neginf=-(2.0**31), posinf=2.0**31 - 1)) - 1
        return torch.from_numpy(np.clip(h, -(2.0**31), 2.0**31 - 1).astype(np.int32))


@dataclass(frozen=True, eq=False)
class _CentredPoses:
    """The clean poses for float32 products about their mean ``c``: rows ``[x - c, <c, x - c>]`` rounded to float32
    ``(N, 4J + 1)`` on the device, and per tile the largest ``|stored row|`` and ``|stored - exact row|`` ``(T,)``."""

    rows: torch.Tensor
    norms: np.ndarray
    error: np.ndarray

    @classmethod
    def build(
        cls, flat: np.ndarray, tile: int, centre: np.ndarray, device: str | torch.device
    ) -> _CentredPoses:
        """``flat (N, D)`` float32 and its mean ``centre``."""
        N, D = flat.shape
        rows = np.empty((N, D + 1), np.float32)
        T = -(-N // tile)
        norms, error = np.empty(T), np.empty(T)
        for t in range(T):  # in tiles: memory stays bounded for any set
            xc = flat[t * tile : (t + 1) * tile] - centre
            exact = np.concatenate([xc, (xc @ centre)[:, None]], 1)
            rows[t * tile : (t + 1) * tile] = exact
            stored = rows[t * tile : (t + 1) * tile].astype(np.float64)
            norms[t] = np.sqrt((stored * stored).sum(1)).max()
            error[t] = np.sqrt(((stored - exact) ** 2).sum(1)).max()
        grow = 1 + 1e-12  # the float64 rounding of the bounds themselves
        return cls(torch.from_numpy(rows).to(device), norms * grow, error * grow + 1e-12)


def _rounding(device: torch.device) -> float:
    """Unit roundoff of the float32 matrix product's inputs on ``device`` (TF32 where CUDA may use it)."""
    if device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        return _U_TF32
    return _U32


class _TopK:
    """Running ``k`` nearest per query, ordered by (distance, id)."""

    def __init__(self, m: int, k: int, cap: float = np.inf) -> None:
        self.k = k
        self.cap = cap  # nothing farther is kept
        self.dist = np.full((m, k), np.inf)
        self.ids = np.full((m, k), -1, dtype=np.int64)

    def kth(self) -> np.ndarray:
        return np.minimum(self.dist[:, -1], self.cap)

    def merge(self, rows: np.ndarray, ids: np.ndarray, dist: np.ndarray) -> None:
        """Offer the pairs (query ``rows``, clean ``ids``) at distances ``dist``."""
        if not len(rows):
            return
        touched = np.unique(rows)
        old_rows = np.repeat(touched, self.k)
        all_rows = np.concatenate([old_rows, rows])
        all_ids = np.concatenate([self.ids[touched].reshape(-1), ids])
        all_dist = np.concatenate([self.dist[touched].reshape(-1), dist])
        order = np.lexsort((all_ids, all_dist, all_rows))
        r, i, d = all_rows[order], all_ids[order], all_dist[order]
        keep = np.ones(len(r), dtype=bool)
        keep[1:] = (r[1:] != r[:-1]) | (i[1:] != i[:-1])  # one pair found twice: the same distance, kept once
        keep &= (i >= 0) & (d <= self.cap)
        r, i, d = r[keep], i[keep], d[keep]
        first = np.searchsorted(r, touched)
        rank = np.arange(len(r)) - np.repeat(first, np.diff(np.append(first, len(r))))
        take = rank < self.k
        self.dist[touched] = np.inf
        self.ids[touched] = -1
        self.dist[r[take], rank[take]] = d[take]
        self.ids[r[take], rank[take]] = i[take]


def _exact(
    index: PoseIndex, queries: np.ndarray, rows: np.ndarray, ids: np.ndarray, metric: str
) -> np.ndarray:
    # in pieces whose temporaries stay in cache (fresh large arrays cost their page faults: 3x the arithmetic)
    out = np.empty(len(rows))
    for a in range(0, len(rows), _EXACT_PIECE):
        b = a + _EXACT_PIECE
        out[a:b] = pose_distance(queries[rows[a:b]], index.poses[ids[a:b]], metric=metric)
    return out


def _offer(
    top: _TopK, index: PoseIndex, queries: np.ndarray, rows: np.ndarray, ids: np.ndarray, metric: str,
    exclude: np.ndarray | None,
) -> int:  # fmt: skip
    if exclude is not None:
        ok = ids != exclude[rows]
        rows, ids = rows[ok], ids[ok]
    if len(rows):
        top.merge(rows, ids, _exact(index, queries, rows, ids, metric))
    return len(rows)


def knn(
    index: PoseIndex,
    queries: np.ndarray,
    k: int,
    *,
    metric: str,
    hints: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    window: int = 16,
    max_distance: float = np.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest clean poses of every query, exactly.

    Args:
        index: the clean poses (:meth:`PoseIndex.build`).
        queries: ``(M, J, 4)`` unit quaternions (any sign), the index's joints.
        k: neighbours per query (at most the clean set's size, less one with ``exclude``).
        metric: ``posendf`` or ``geodesic``.
        hints: ``(M,)`` a clean pose near each query (its source): the search starts from the poses within
            ``window`` of it. Only speed depends on them.
        exclude: ``(M,)`` a clean pose id each query may not return (itself, in a leave-one-out search), or -1.
        max_distance: only neighbours at this distance or nearer (a radius search: fewer may be found; the rest of
            a row is id -1 at distance inf). The bounds start from it, so a small radius searches fast.

    Returns:
        ``distances (M, k)`` float64 and ``ids (M, k)`` int64, nearest first (ties by smaller id).
    """
    metric = check_metric(metric)
    queries = np.asarray(queries)
    M = len(queries)
    N, J = index.size, index.joints
    if queries.ndim != 3 or queries.shape[1:] != (J, 4):
        raise InvalidArgumentError(f"queries must be (M, {J}, 4) to match the clean set, got {queries.shape}")
    limit = N - (1 if exclude is not None else 0)
    if not 1 <= k <= limit:
        raise InvalidArgumentError(f"k must be in [1, {limit}] for a clean set of {N} poses, got {k}")
    if not np.isfinite(queries).all():
        raise InvalidArgumentError("queries hold non-finite values")
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    queries = np.where(queries[..., 3:] < 0, -queries, queries)  # w >= 0, as the clean set (same distances)
    dist = np.empty((M, k))
    ids = np.empty((M, k), dtype=np.int64)
    # queries in blocks: the bounds per (query, tile) take 8 bytes each, several times over
    for a in range(0, M, _QUERIES_AT_ONCE):
        b = min(a + _QUERIES_AT_ONCE, M)
        q = queries[a:b]
        ex = None if exclude is None else np.asarray(exclude)[a:b]
        top = _TopK(b - a, k, float(max_distance))
        if hints is not None:
            offsets = np.arange(-window, window + 1)
            around = np.clip(np.asarray(hints, dtype=np.int64)[a:b, None] + offsets[None, :], 0, N - 1)
            _offer(top, index, q, np.repeat(np.arange(b - a), len(offsets)), around.reshape(-1), metric, ex)
        else:
            _proxy_start(top, index, q, metric, ex)
        _scan(top, index, q, metric, ex)
        dist[a:b], ids[a:b] = top.dist, top.ids
    return dist, ids


def _proxy_start(
    top: _TopK, index: PoseIndex, queries: np.ndarray, metric: str, exclude: np.ndarray | None
) -> None:
    """Without hints: the poses of largest ``L`` (a proxy; any candidates give a valid start) evaluated exactly."""
    dev = index.flat.device
    Q = torch.from_numpy(queries.reshape(len(queries), -1)).to(dev)
    kp = min(top.k + 1 + (exclude is not None), index.size)
    best_val = torch.full((len(queries), kp), -torch.inf, device=dev)
    best_ids = torch.zeros((len(queries), kp), dtype=torch.long, device=dev)
    for s in range(0, index.size, 8192):
        L = Q @ index.flat[s : s + 8192].T
        v, i = L.topk(min(kp, L.shape[1]), dim=1)
        vals = torch.cat([best_val, v], 1)
        ids = torch.cat([best_ids, i + s], 1)
        best_val, pick = vals.topk(kp, dim=1)
        best_ids = ids.gather(1, pick)
    rows = np.repeat(np.arange(len(queries)), kp)
    _offer(top, index, queries, rows, index.order[best_ids.cpu().numpy().reshape(-1)], metric, exclude)


def _seed_from_best_tiles(
    top: _TopK,
    index: PoseIndex,
    queries: np.ndarray,
    upper: np.ndarray,
    metric: str,
    exclude: np.ndarray | None,
) -> int:
    """Each query's ``k`` poses of largest ``L`` in its most promising tile (the largest bound), evaluated exactly
    before the scan: the tiles are visited in one order for all queries, and without this start a query whose
    neighbours lie in a late tile would pass many poses on a loose threshold first. Returns the evaluations."""
    best = upper.argmax(1)
    dev = index.flat.device
    Q = torch.from_numpy(queries.reshape(len(queries), -1)).to(dev)
    rows_all, ids_all = [], []
    for t in np.unique(best):
        rows = np.flatnonzero(best == t)
        s = int(t) * index.tile
        block = index.flat[s : s + index.tile]
        kp = min(top.k + (exclude is not None), len(block))
        pick = (Q[torch.from_numpy(rows).to(dev)] @ block.T).topk(kp, dim=1).indices.cpu().numpy()
        rows_all.append(np.repeat(rows, kp))
        ids_all.append(index.order[pick.reshape(-1) + s])
    return _offer(top, index, queries, np.concatenate(rows_all), np.concatenate(ids_all), metric, exclude)


def _spread_factors(index: PoseIndex, queries: np.ndarray) -> np.ndarray:
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
    T = len(index.centres)
    qn = queries / np.linalg.norm(queries.astype(np.float64), axis=-1, keepdims=True)
    Qj = torch.from_numpy(np.ascontiguousarray(qn.transpose(1, 0, 2), dtype=np.float32))  # (J, M, 4)
    Mj = torch.from_numpy(
        np.ascontiguousarray(index.centres.transpose(1, 2, 0), dtype=np.float32)
    )  # (J, 4, T)
    msq = (Mj * Mj).sum(1, keepdim=True)  # (J, 1, T)
    radii = torch.from_numpy(np.ascontiguousarray(index.radii.T, dtype=np.float32))[:, None]  # (J, 1, T)
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


def _centred_queries(
    index: PoseIndex, queries: np.ndarray, u: float
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The queries ``(M, J, 4)`` for the float32 products about the clean set's mean ``c``:
    ``<q, x> = <q, c> + <[q - c, 1], [x - c, <c, x - c>]>``, whose terms are small where the poses are alike, and so
    is the rounding of their product.

    Returns ``[q - c, 1]`` rounded to float32 ``(M, 4J + 1)``, ``eta (M, T)`` bounding ``|<q, x> - <q, c> - P|`` for
    ``P`` the float32 product with any pose of each tile (the product's rounding ``gamma_K |Q'| |X'|`` for unit
    roundoff ``u``, and that of storing the centred rows in float32, on both sides), and ``<q, c> (M,)``.
    """
    M = len(queries)
    assert index.centred is not None
    K = index.centred.rows.shape[1]
    gamma = K * u / (1 - K * u)
    q_flat = queries.reshape(M, -1).astype(np.float64)
    q_exact = np.concatenate([q_flat - index.centre, np.ones((M, 1))], 1)
    Q = torch.from_numpy(q_exact.astype(np.float32))
    q_stored = Q.numpy().astype(np.float64)
    q_norm = np.sqrt((q_stored * q_stored).sum(1))
    q_error = np.sqrt(((q_stored - q_exact) ** 2).sum(1)) * (1 + 1e-12) + 1e-12
    x_norm, x_error = index.centred.norms, index.centred.error
    eta = gamma * np.outer(q_norm, x_norm) + np.outer(q_error, x_norm + x_error) + np.outer(q_norm, x_error)
    return Q, eta * (1 + 1e-9) + 1e-30, q_flat @ index.centre


def _joint_floor(products: torch.Tensor, metric: str, shrink: float, joint_error: float) -> torch.Tensor:
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
    offset, scale = _joint_affine(metric, shrink, joint_error)
    terms = torch.add(offset, products.abs_(), alpha=-scale).clamp_(min=0.0)
    if metric != "posendf":
        a0, a1, a2, a3 = (float(c) for c in _kernels.SERIES)
        series = ((terms * a3 + a2) * terms + a1).mul_(terms).add_(a0)
        terms.sqrt_().mul_(series)
    return terms.sum(0).mul_(1 - _SUM_ROUNDING).sub_(1e-6)


def _kernel_terms(
    metric: str, shrink: float, joint_error: float, eps: float
) -> tuple[float, float, float, float]:
    """``(offset, scale, uoff, uscale)`` for the compiled stage (:func:`amasskit.prior.poses._kernels.joint_stage`): the
    terms of :func:`_joint_floor`, and ``uoff - uscale |p_j| >= u_j = 1 - c_j``: ``c_j >= (|p_j| - joint_error) /
    (1 + eps)^2`` (each norm within ``eps`` of 1), with ``uoff`` rounded up by more than the float32 evaluation's
    rounding (three roundings of numbers at most 2: 4e-7) and ``uscale`` rounded down."""
    offset, scale = _joint_affine(metric, shrink, joint_error)
    inv = 1.0 / (1.0 + eps) ** 2
    uoff = np.float32(1.0 + joint_error * inv + 4e-7)
    uoff = np.nextafter(uoff, np.float32(np.inf)) if uoff < 1.0 + joint_error * inv + 4e-7 else uoff
    uscale = np.float32(inv * (1 - 1e-7))
    uscale = np.nextafter(uscale, np.float32(0)) if uscale > inv * (1 - 1e-7) else uscale
    return offset, scale, float(uoff), float(uscale)


def _kernel_ulow(
    index: PoseIndex, need: np.ndarray, t: int, at_centre: np.ndarray, to_score: np.ndarray, q_norm: np.ndarray,
    eta: np.ndarray, correction: np.ndarray, shrink: float, J: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(ulow0, uslope)`` float32 for queries ``need`` and tile ``t``: ``U_low = ulow0 - uslope h`` bounds ``U = J -
    sum_j c_j`` from below for a first-stage value ``h`` (``S <= (<q, c> + eta + correction + to_score h) /
    shrink``).

    The float32 evaluation ``ulow0 - uslope h`` rounds ``h``, the product and the difference: at most ``4u (|ulow0|
    + |uslope h|)``, and ``|uslope h| <= (|q| extent + eta) / shrink``; that is taken off ``ulow0`` (rounded down)."""
    a = (at_centre[need] + eta[need, t] + correction[need, t]) / shrink
    slope = to_score[need] / shrink
    base = J - a
    big = (q_norm[need] * index.extent + eta[need, t]) / shrink * 1.01 + 1e-6
    ulow0 = base - (4 * _U32 * (np.abs(base) + big) + 1e-9)
    u0 = ulow0.astype(np.float32)
    u0 = np.where(u0 > ulow0, np.nextafter(u0, np.float32(-np.inf)), u0)
    return u0, slope.astype(np.float32)


def _scan_tolerances(
    index_norm_error: float, query_norm_error: float, u: float
) -> tuple[float, float, float]:
    """``(eps, shrink, joint_error)`` of a scan: ``eps`` bounds every quaternion's norm error (the index's and the
    queries'); the distances divide the norms out of each ``|p_j|`` (every norm within ``eps`` of 1), so a
    normalised sum is at most the raw one over ``shrink = (1 - eps)^2`` (rounded down), and raw bounds are compared
    with ``thr shrink``; ``joint_error`` bounds the rounding of each float32 joint product (``u``: the device's unit
    roundoff)."""
    eps = max(index_norm_error, query_norm_error) + 1e-15
    shrink = (1 - eps) ** 2 * (1 - 1e-15)
    joint_error = 4 * u / (1 - 4 * u) * (1 + eps) ** 2 + 1e-30
    return eps, shrink, joint_error


def _joint_affine(metric: str, shrink: float, joint_error: float) -> tuple[float, float]:
    """``(offset, scale)``: a joint's term (before the square root, for the geodesic) is at least ``max(offset -
    scale |p_j|, 0)`` (see :func:`_joint_floor`)."""
    scale = (1.0 if metric == "posendf" else 2.0) / shrink
    return scale * (shrink - joint_error) - _TERM_ROUNDING, scale


def _kernel_limits(limit: np.ndarray) -> np.ndarray:
    """The compiled stage's limits ``(m,)`` float32: a pair is kept while its float32 sum of terms is at most this,
    which is ``limit`` raised by what the sum's rounding can add (as :func:`_joint_floor` lowers the sum), rounded
    up."""
    raised = (np.asarray(limit, dtype=np.float64) + 1e-6) / (1 - _SUM_ROUNDING)
    # finite (the kernel is compiled on the promise of no infinities; no limit is needed past any distance, at most
    # J pi / 2), and below the kernel's marker for a lane without a candidate (1e30)
    raised = np.minimum(raised, 1e20)
    out = raised.astype(np.float32)
    return np.where(out < raised, np.nextafter(out, np.float32(np.inf)), out)


def _scan(top: _TopK, index: PoseIndex, queries: np.ndarray, metric: str, exclude: np.ndarray | None) -> None:
    M, J = queries.shape[:2]
    dev = index.flat.device
    f64 = torch.float64
    # the bounds per (query, tile), in float64 torch (vectorised transcendental functions: numpy's took as long
    # as the matrix products they save)
    q64 = torch.from_numpy(queries).to(dev, f64)  # (M, J, 4)
    qn = torch.linalg.vector_norm(q64, dim=-1)  # (M, J)
    centres = torch.from_numpy(index.centres).to(dev)  # (T, J, 4)
    radii = torch.from_numpy(index.radii).to(dev)  # (T, J)
    T = len(centres)
    # L <= sum_j <q_j, m_j> + |q_j| r_j over a tile: two matrix products
    inner = q64.reshape(M, -1) @ centres.reshape(T, -1).T
    upper_l = inner + qn @ radii.T  # (M, T)
    # and L = (|Q|^2 + |X|^2 - |Q - X|^2) / 2 with |Q - X| >= |Q - M| - R (the tile's ball): tight where the tile's
    # poses are alike, as the tree that orders them makes them (|Q - M|^2 expanded in float64: 1e-12 covers its
    # rounding)
    q_sq = (q64.reshape(M, -1) ** 2).sum(1)
    m_sq = (centres.reshape(T, -1) ** 2).sum(1)
    gap = torch.sqrt((q_sq[:, None] + m_sq[None] - 2 * inner - 1e-12).clamp_min(0.0))
    gap = (gap - torch.from_numpy(index.ball_radii).to(dev)[None]).clamp_min(0.0)
    by_ball = (q_sq[:, None] + torch.from_numpy(index.norms).to(dev)[None] ** 2 - gap * gap) / 2 * (
        1 + 1e-12
    ) + 1e-12
    upper_l = torch.minimum(upper_l, by_ball)
    # the correction S - L = 2 sum_j max(0, -p_j), with w >= 0 on both sides: -p_j <= |q_j| |x_j| (sin a sin a' -
    # cos a cos a') = -|q_j| |x_j| cos(a + a') (a the half-angles), and about the tile's centre -p_j <= |q_j| r_j -
    # <q_j, m_j>. Only joints whose half-angles can add up past pi / 2 can contribute: most poses have none
    half_q = torch.atan2(torch.linalg.vector_norm(q64[..., :3], dim=-1), q64[..., 3])  # (M, J)
    half_x = torch.from_numpy(index.half_angles).to(dev)  # (T, J)
    correction_t = torch.zeros(M, T, dtype=f64, device=dev)
    rows_j, cols_j = torch.nonzero(half_q + half_x.max(0).values[None] >= np.pi / 2 - 1e-9, as_tuple=True)
    if rows_j.numel():
        qj = q64[rows_j, cols_j]  # (n, 4)
        P = torch.einsum("nc,tnc->nt", qj, centres[:, cols_j])  # <q_j, m_j> per (entry, tile)
        by_centre = qn[rows_j, cols_j][:, None] * radii[:, cols_j].T - P
        by_angle = -torch.cos(torch.clamp(half_q[rows_j, cols_j][:, None] + half_x[:, cols_j].T, max=np.pi))
        by_angle = (
            by_angle * qn[rows_j, cols_j][:, None] * torch.from_numpy(index.joint_norms).to(dev)[:, cols_j].T
        )
        terms = 2.0 * torch.minimum(by_centre.clamp_min(0.0), (by_angle + 1e-12).clamp_min(0.0))  # (n, T)
        correction_t.index_add_(0, rows_j, terms)
    upper_t = upper_l + correction_t  # bound on S over each tile
    correction, upper = correction_t.cpu().numpy(), upper_t.cpu().numpy()
    u = _rounding(dev)
    eps, shrink, joint_error = _scan_tolerances(index.norm_error, float((qn - 1).abs().max()), u)
    if index.blocks is None:  # the torch per-joint stage's queries
        Qj = torch.from_numpy(np.ascontiguousarray(queries.transpose(1, 0, 2))).to(dev)  # (J, M, 4)
    # the first stage's queries, and ``eta (M, T)``: the bound on its products' error over each tile
    int8, qi = index.int8, None
    if int8 is not None:
        qi = int8.queries(queries)
        eta = int8.error(qi)
    else:
        Q, eta, at_centre = _centred_queries(index, queries, u)
        Q = Q.to(dev)
    evaluated = _seed_from_best_tiles(top, index, queries, upper, metric, exclude)
    if index.blocks is not None:
        q_rows = np.ascontiguousarray(queries, dtype=np.float32)
        kernel_terms = _kernel_terms(metric, shrink, joint_error, eps)
        q_norm = np.sqrt((queries.reshape(M, -1).astype(np.float64) ** 2).sum(1))
        # the kernel bounds the joints it has not added from the tile's balls: unit queries, and a slack for the
        # poses' norms and the float64 rounding of a chord near 0 (a few 1e-8)
        q_unit = queries.astype(np.float64)
        q_unit /= np.linalg.norm(q_unit, axis=-1, keepdims=True)
        ball_slack = index.norm_error + 1e-7
        if qi is not None:
            at_centre_all, to_score_all = qi.at_centre, qi.to_score
        else:
            at_centre_all, to_score_all = at_centre, np.ones(M)
    order = np.argsort(-upper.mean(0), kind="stable")
    scanned = 0
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    waiting = 0

    def flush() -> int:
        nonlocal waiting
        if not pending:
            return 0
        rows_, ids_ = np.concatenate([p[0] for p in pending]), np.concatenate([p[1] for p in pending])
        pending.clear()
        waiting = 0
        return _offer(top, index, queries, rows_, ids_, metric, exclude)

    # the geodesic's bound from S is loose where a distance is spread over the joints; where no joint's term can be
    # large over a tile (at most m), the concave terms give a tighter one: d >= U acos(1 - m) / m
    spread = _spread_factors(index, queries) if metric == "geodesic" else None
    for t in order:
        kth = top.kth()
        thr = score_threshold(kth, J, metric=metric)
        if spread is not None:
            thr = np.maximum(thr, J - kth / spread[:, t])
        thr = (thr - _SLACK) * shrink
        need = np.flatnonzero(upper[:, t] + eta[:, t] >= thr)
        if not len(need):
            continue
        s = int(t) * index.tile
        width = min(index.tile, index.size - s)
        scanned += len(need) * width
        floor_all: torch.Tensor
        if qi is not None:
            floor_all = qi.floors(need, thr[need] - correction[need, t], eta[need, t])
        else:
            # the float32 floors are rounded down a step more, so no pose within the bound is lost to their rounding
            down = torch.tensor(-torch.inf, device=dev)
            floor_all = torch.nextafter(
                torch.from_numpy(thr[need] - correction[need, t] - at_centre[need] - eta[need, t]).to(
                    dev, torch.float32
                ),
                down,
            )
        if index.blocks is not None:
            floor_np = floor_all.numpy()
            if floor_np.dtype.kind == "f":  # finite for the kernel (-inf: every pose a candidate, as this is)
                floor_np = np.maximum(floor_np, np.float32(-3e38))
        else:
            limit_all = torch.from_numpy(kth[need] + _SLACK).to(dev, torch.float32)
        step = _QUERY_BLOCK_INT8 if int8 is not None else _QUERY_BLOCK
        for b0 in range(0, len(need), step):  # products of a cache's size
            rows = need[b0 : b0 + step]
            rows_dev = torch.from_numpy(rows).to(dev)
            # a run of consecutive queries (the usual case: no tile skipped) is sliced, not gathered
            picked: slice | torch.Tensor = (
                slice(int(rows[0]), int(rows[-1]) + 1) if rows[-1] - rows[0] == len(rows) - 1 else rows_dev
            )
            floor = floor_all[b0 : b0 + step]
            # the products, or integers that bound them, compared with floors in their own units; only rows with a
            # candidate are looked into
            if index.blocks is not None:
                # the compiled stage takes the first stage's values and does the rest (candidates, per-joint bound)
                value: torch.Tensor
                if int8 is not None and qi is not None:
                    g1, g2 = int8.products(qi, picked, s, s + width)
                    hit_rows = int8.hit_rows(g1, g2, floor)
                    if not hit_rows.numel():
                        continue
                    # H for the rows with a candidate only (no overflow: checked at build)
                    value = g1[hit_rows].mul_(_LOW).add_(g2[hit_rows])
                else:
                    assert index.centred is not None
                    L = Q[picked] @ index.centred.rows[s : s + width].T
                    hit_rows = torch.nonzero(L.amax(1) >= floor).squeeze(1)
                    if not hit_rows.numel():
                        continue
                    value = L[hit_rows]
                hit_np = hit_rows.numpy()
                at = b0 + hit_np
                lanes = _kernels.LANES
                pad = -width % lanes  # whole blocks of 16: the padding's columns are dropped below
                if pad:
                    value = torch.nn.functional.pad(value, (0, pad), value=-(2**30))
                hmax = value.view(len(value), -1, lanes).amax(2)  # torch: numpy's reduction over 16 is slow
                hit_q = rows[hit_np]  # the queries with a candidate
                kr, kc = _kernels.joint_stage(
                    value.numpy(), hmax.numpy(), floor_np[at], q_rows[hit_q],
                    index.blocks[s // lanes : (s + width + pad) // lanes], _kernel_limits(kth[hit_q] + _SLACK),
                    _kernel_ulow(index, hit_q, t, at_centre_all, to_score_all, q_norm, eta, correction, shrink, J),
                    (q_unit[hit_q], index.centres[t : t + 1], index.radii[t : t + 1], np.zeros(len(hit_q), np.int64),
                     ball_slack),
                    terms=kernel_terms, root=metric != "posendf", order=index.joint_order,
                    threads=torch.get_num_threads(),
                )  # fmt: skip
                kr, kc = kr[kc < width], kc[kc < width]  # the padding's columns
                if len(kr):
                    pending.append((rows[hit_np[kr]], index.order[kc + s]))
                    waiting += len(kr)
                    if waiting >= _BATCH:
                        evaluated += flush()
                continue
            if int8 is not None and qi is not None:
                hit_rows, passed = int8.candidates(qi, picked, s, s + width, floor)
            else:
                assert index.centred is not None
                L = Q[picked] @ index.centred.rows[s : s + width].T
                hit_rows = torch.nonzero(L.amax(1) >= floor).squeeze(1)
                passed = floor[hit_rows, None] <= L[hit_rows]
            if not hit_rows.numel():
                continue
            # rows where many pass the first bound (a query far from every pose, or a geodesic distance the
            # aggregate bounds loosely): the per-joint terms in float32, with their rounding bounded, decide (in
            # blocks of queries whose temporaries stay in cache)
            hit_r, hit_c = torch.nonzero(passed, as_tuple=True)
            heavy = torch.nonzero(torch.bincount(hit_r, minlength=len(hit_rows)) > 0.05 * width).squeeze(1)
            if heavy.numel():
                assert index.joint_major is not None
                sub_dev = rows_dev[hit_rows[heavy]]
                at = np.searchsorted(need, sub_dev.cpu().numpy())
                limit = limit_all[torch.from_numpy(at).to(dev)]
                for r0 in range(0, len(sub_dev), _STAGE_TWO_ROWS):
                    r1 = min(r0 + _STAGE_TWO_ROWS, len(sub_dev))
                    products = torch.bmm(Qj[:, sub_dev[r0:r1]], index.joint_major[:, :, s : s + width])
                    bound = _joint_floor(products, metric, shrink, joint_error)
                    passed[heavy[r0:r1]] &= bound <= limit[r0:r1, None]
                hit_r, hit_c = torch.nonzero(passed, as_tuple=True)
            if hit_r.numel():
                # evaluated in batches (each call has a fixed cost); the threshold tightens at each batch
                pending.append(
                    (rows[hit_rows.cpu().numpy()[hit_r.cpu().numpy()]], index.order[hit_c.cpu().numpy() + s])
                )
                waiting += int(hit_r.numel())
                if waiting >= _BATCH:
                    evaluated += flush()
    evaluated += flush()
    logger.debug("exact search: %d queries, %.1f%% of the pairs scanned, %.2f exact evaluations per query", M,
                 100 * scanned / (M * index.size), evaluated / M)  # fmt: skip


def knn_brute_force(
    clean: np.ndarray, queries: np.ndarray, k: int, *, metric: str, exclude: np.ndarray | None = None,
    block: int = 64, clean_block: int = 16384,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The reference: every distance evaluated (:func:`pose_distance`), sorted by (distance, id). Slow.

    ``exclude``: ``(M,)`` a clean pose id each query may not return, or -1 for none (as :func:`knn`)."""
    clean = np.asarray(clean, dtype=np.float32)
    queries = np.asarray(queries, dtype=np.float32)
    dist = np.empty((len(queries), k))
    ids = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), block):
        q = queries[s : s + block]
        d = np.concatenate([pose_distance(q[:, None], clean[None, c : c + clean_block], metric=metric)
                            for c in range(0, len(clean), clean_block)], axis=1)  # fmt: skip
        if exclude is not None:  # -1: nothing excluded for that query (as knn)
            ex = np.asarray(exclude)[s : s + block]
            rows = np.flatnonzero(ex >= 0)
            d[rows, ex[rows]] = np.inf
        for r in range(len(d)):
            order = np.lexsort((np.arange(len(clean)), d[r]))[:k]
            dist[s + r], ids[s + r] = d[r, order], order
    return dist, ids
