"""Exact k-nearest clean poses under the pose metrics, without an approximate index: :class:`PoseIndex`, shaped
as faiss's indexes (``PoseIndex(clean, metric=...)``, ``.search(queries, k) -> (distances, ids)``,
``.range_search(queries, radius)``), and :func:`knn_brute_force`, the plain reference.

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

* on the CPU, integers (``products="int8"``): two-part int8 products, exact in int32, with a proven bound on what
  the parts leave out (about 1e-3 of ``L``; 2.6-2.8x the speed of float32 products on a CPU with VNNI);
* otherwise (a GPU, or ``products="float32"``), float32 products about the mean pose, with their rounding bounded
  (about 1e-5 where the poses are alike). Both: :mod:`._products`.

Only the poses whose bound on ``L`` reaches ``thr - B`` go on; the norms of the stored quaternions (1 to about 1e-7)
are divided out with a factor ``(1 - eps)^2``. For the geodesic, ``thr`` is also raised per (query, tile) by a bound
from the concave terms: where no joint's ``u_j = 1 - c_j`` can exceed ``m`` over the tile, ``geodesic >= U acos(1 -
m) / m`` with ``U = J - S`` (:func:`._bounds.spread_factors`; up to ``sqrt(J)`` tighter than the bound from ``U`` alone when a
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

The survivors are evaluated exactly in float64, in batches (:mod:`._scan`).

The tiles hold alike poses (the leaves of a principal-axis tree, :mod:`._tiles`), so a tile is also skipped by
the triangle inequality on its ball (``|Q - X| >= |Q - M| - R``). Tiles are visited best bound first, so ``thr`` rises
early; each query starts from the exact distances to the best poses of its most promising tile and, with ``hints``
(each query's source pose, as the training-data job has), to the poses around its source. Measured
(``benchmarks/prior_data.py``, benchmarks/RESULTS.md; a dense synthetic set): for Pose-NDF's metric and noise the
search scans 38% of the pairs and evaluates about 100 poses a query exactly, 4-8x the speed of Pose-NDF's (inexact)
faiss procedure on 2 CPU cores; for NRDF's metric and noise about 2x (see RESULTS.md for the runs).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ...errors import InvalidArgumentError
from ._metric import check_metric, pose_distance
from ._scan import search
from ._tiles import Tiles

__all__ = ["PoseIndex", "knn", "knn_brute_force"]


class PoseIndex:
    """The exact nearest clean poses of queries, shaped as a faiss index: it owns its poses and its metric.

    ``PoseIndex(clean, metric="geodesic")`` prepares ``clean (N, J, 4)`` XYZW quaternions (any sign; stored float32
    with ``w >= 0``, kept as given when already so, so that a memory map stays one); :meth:`search` returns the ``k``
    nearest of each query, :meth:`range_search` all those within a radius, both equal to brute force
    (:func:`knn_brute_force`: the same ids, ordered by distance then id, and the same float64 distances).

    Args:
        poses: ``(N, J, 4)`` the clean poses; ids are their rows.
        metric: ``geodesic`` (``sum_j acos c_j``, radians) or ``posendf`` (``sum_j 1 - c_j``), see
            :func:`~amasskit.prior.pose_distance`.
        tile: poses per tile (alike poses, skipped together on a bound; a multiple of 16 for the compiled stage).
        device: where the products run (``cpu``, ``cuda``).
        products: how the first stage bounds every pair: ``int8`` (two-part integer products, exact in int32, with a
            proven bound on what the parts leave out: about 2.6-2.8x faster than float32 on a CPU with VNNI),
            ``float32``, or ``auto`` (``int8`` on the CPU where torch has integer products, else ``float32``).
        joint_stage: how the second stage bounds each joint's term: ``numba`` (a compiled loop that stops at the
            first joints that decide; CPU, the ``search`` extra), ``torch``, or ``auto`` (``numba`` where it can run).
            Neither choice changes a result, only the speed.

    Raises:
        InvalidArgumentError: poses not ``(N, J, 4)``, empty or not finite; an unknown metric or option, or one this
            machine cannot run.
    """

    def __init__(
        self,
        poses: np.ndarray,
        *,
        metric: str = "geodesic",
        tile: int = 1024,
        device: str | torch.device = "cpu",
        products: str = "auto",
        joint_stage: str = "auto",
    ) -> None:
        self.metric = check_metric(metric)
        self._tiles = Tiles.build(poses, tile=tile, device=device, products=products, joint_stage=joint_stage)

    @classmethod
    def build(cls, poses: np.ndarray, *, metric: str = "geodesic", **options: object) -> PoseIndex:
        """``PoseIndex(poses, metric=..., **options)`` (the constructor's name before 0.2, kept)."""
        return cls(poses, metric=metric, **options)  # type: ignore[arg-type]

    def with_metric(self, metric: str) -> PoseIndex:
        """The same prepared poses searched under another metric (nothing is rebuilt)."""
        other = object.__new__(PoseIndex)
        other.metric, other._tiles = check_metric(metric), self._tiles
        return other

    @property
    def ntotal(self) -> int:
        """The number of clean poses (faiss's name)."""
        return self._tiles.size

    @property
    def size(self) -> int:
        return self._tiles.size

    @property
    def joints(self) -> int:
        return self._tiles.joints

    @property
    def poses(self) -> np.ndarray:
        """``(N, J, 4)`` float32 the clean poses as searched (``w >= 0``), by id."""
        return self._tiles.poses

    @property
    def products(self) -> str:
        """The first stage chosen: ``int8`` or ``float32``."""
        return self._tiles.first_stage.kind

    @property
    def joint_stage(self) -> str:
        """The second stage chosen: ``numba`` or ``torch``."""
        return "numba" if self._tiles.blocks is not None else "torch"

    def __repr__(self) -> str:
        return (
            f"PoseIndex({self.ntotal} poses of {self.joints} joints, metric={self.metric!r}, "
            f"products={self.products!r}, joint_stage={self.joint_stage!r})"
        )

    def _queries(self, queries: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
        """``(M, J, 4)`` float32 with ``w >= 0`` (the same distances) and the leading shape."""
        queries = np.asarray(queries)
        J = self.joints
        if queries.ndim < 2 or queries.shape[-2:] != (J, 4):
            raise InvalidArgumentError(
                f"queries must be (..., {J}, 4) to match the clean set, got {queries.shape}"
            )
        lead = queries.shape[:-2]
        flat = queries.reshape(-1, J, 4)
        if not np.isfinite(flat).all():
            raise InvalidArgumentError("queries hold non-finite values")
        flat = np.ascontiguousarray(flat, dtype=np.float32)
        return np.where(flat[..., 3:] < 0, -flat, flat), lead

    def _per_query(self, values: np.ndarray | None, lead: tuple[int, ...], name: str) -> np.ndarray | None:
        if values is None:
            return None
        array = np.asarray(values)
        if array.shape != lead or not np.issubdtype(array.dtype, np.integer):
            raise InvalidArgumentError(
                f"{name} must be integer ids of shape {lead} (one per query), got {array.dtype} {array.shape}"
            )
        if array.size and (array.min() < -1 or array.max() >= self.ntotal):
            raise InvalidArgumentError(f"{name} holds ids outside [-1, {self.ntotal - 1}]")
        return array.reshape(-1).astype(np.int64)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        hints: np.ndarray | None = None,
        exclude: np.ndarray | None = None,
        window: int = 16,
        max_distance: float = np.inf,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest clean poses of every query, exactly.

        Args:
            queries: ``(..., J, 4)`` quaternions (any sign and norm near 1), the index's joints.
            k: neighbours per query; where fewer exist (``k`` past the set's size, or ``max_distance``), the rest of
                a row is id -1 at distance inf.
            hints: ``(...)`` a clean pose id near each query (its source, as the training-data job has): the search
                starts from the ``2 window + 1`` poses around it. Only speed depends on them.
            exclude: ``(...)`` a clean pose id each query may not return (itself, in a leave-one-out search), or -1.
            window: see ``hints``.
            max_distance: only neighbours at this distance or nearer. The bounds start from it, so a small radius
                searches fast.

        Returns:
            ``distances (..., k)`` float64 and ``ids (..., k)`` int64, nearest first (ties by smaller id).

        Raises:
            InvalidArgumentError: queries of another shape or not finite, ``k < 1``, hints or exclude of another
                shape or outside the ids.
        """
        q, lead = self._queries(queries)
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidArgumentError(f"k must be a whole number >= 1, got {k!r}")
        hints_flat = self._per_query(hints, lead, "hints")
        exclude_flat = self._per_query(exclude, lead, "exclude")
        found = min(int(k), self.ntotal)  # a row with an exclusion finds one fewer: -1 at inf
        dist = np.full((len(q), int(k)), np.inf)
        ids = np.full((len(q), int(k)), -1, dtype=np.int64)
        if found > 0 and len(q):
            dist[:, :found], ids[:, :found] = search(
                self._tiles,
                q,
                found,
                metric=self.metric,
                hints=hints_flat,
                exclude=exclude_flat,
                window=window,
                max_distance=max_distance,
            )
        return dist.reshape(*lead, int(k)), ids.reshape(*lead, int(k))

    def range_search(
        self, queries: np.ndarray, radius: float, *, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every clean pose at distance ``radius`` or nearer of each query, exactly, as faiss returns it.

        Args:
            queries: ``(..., J, 4)``, taken in row-major order as ``M`` queries.
            radius: the distance (the metric's units).
            exclude: ``(...)`` a clean pose id each query may not return, or -1.

        Returns:
            ``lims (M + 1,)`` int64, ``distances`` float64 and ``ids`` int64: query ``i``'s neighbours are
            ``ids[lims[i]:lims[i + 1]]`` at ``distances[lims[i]:lims[i + 1]]``, nearest first (ties by smaller id).
        """
        q, lead = self._queries(queries)
        if not np.isfinite(radius) or radius < 0:
            raise InvalidArgumentError(f"radius must be a finite distance >= 0, got {radius!r}")
        exclude_flat = self._per_query(exclude, lead, "exclude")
        limit = self.ntotal - (1 if exclude_flat is not None else 0)
        found: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0), np.empty(0, np.int64))] * len(q)
        todo, k = np.arange(len(q)), min(16, limit)
        while len(todo) and k > 0:
            # a k-nearest search capped at the radius: rows it fills may hold more, and go again with a larger k
            dist, ids = search(
                self._tiles,
                q[todo],
                k,
                metric=self.metric,
                max_distance=float(radius),
                exclude=None if exclude_flat is None else exclude_flat[todo],
            )
            full = (ids[:, -1] >= 0) & (k < limit)
            for row, d, i in zip(todo[~full], dist[~full], ids[~full], strict=True):
                kept = i >= 0
                found[row] = (d[kept], i[kept])
            todo, k = todo[full], min(4 * k, limit)
        lims = np.zeros(len(q) + 1, dtype=np.int64)
        lims[1:] = np.cumsum([len(i) for _, i in found])
        distances = np.concatenate([d for d, _ in found]) if found else np.empty(0)
        neighbours = np.concatenate([i for _, i in found]) if found else np.empty(0, np.int64)
        return lims, distances.astype(np.float64), neighbours.astype(np.int64)


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
    """``index.with_metric(metric).search(queries, k, ...)``: the function before :meth:`PoseIndex.search` (kept
    for one release; deprecated). ``k`` must be at most the set's size (less one with ``exclude``), as before."""
    warnings.warn(
        "knn(index, queries, k, metric=...) is deprecated: use PoseIndex(clean, metric=...).search("
        "queries, k)",
        DeprecationWarning,
        stacklevel=2,
    )
    limit = index.ntotal - (1 if exclude is not None else 0)
    if not 1 <= k <= limit:
        raise InvalidArgumentError(
            f"k must be in [1, {limit}] for a clean set of {index.ntotal} poses, got {k}"
        )
    return index.with_metric(metric).search(
        queries, k, hints=hints, exclude=exclude, window=window, max_distance=max_distance
    )


def knn_brute_force(
    clean: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    metric: str,
    exclude: np.ndarray | None = None,
    block: int = 64,
    clean_block: int = 16384,
) -> tuple[np.ndarray, np.ndarray]:
    """The reference: every distance evaluated (:func:`pose_distance`), sorted by (distance, id). Slow.

    ``exclude``: ``(M,)`` a clean pose id each query may not return, or -1 for none (as :func:`knn`)."""
    clean = np.asarray(clean, dtype=np.float32)
    queries = np.asarray(queries, dtype=np.float32)
    dist = np.empty((len(queries), k))
    ids = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), block):
        q = queries[s : s + block]
        d = np.concatenate(
            [
                pose_distance(q[:, None], clean[None, c : c + clean_block], metric=metric)
                for c in range(0, len(clean), clean_block)
            ],
            axis=1,
        )
        if exclude is not None:  # -1: nothing excluded for that query (as knn)
            ex = np.asarray(exclude)[s : s + block]
            rows = np.flatnonzero(ex >= 0)
            d[rows, ex[rows]] = np.inf
        for r in range(len(d)):
            order = np.lexsort((np.arange(len(clean)), d[r]))[:k]
            dist[s + r], ids[s + r] = d[r, order], order
    return dist, ids
