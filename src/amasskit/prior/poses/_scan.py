"""The exact search's scan: every query's running ``k`` nearest (:class:`TopK`), a start from exact distances to
likely poses, then the tiles, best bound first, each through the two stages (:mod:`._products`, then the per-joint
bound: the compiled kernel or torch) and the survivors evaluated exactly in batches (:func:`search`)."""

from __future__ import annotations

import logging

import numpy as np
import torch

from . import _kernels
from ._bounds import (
    SLACK,
    joint_floor,
    kernel_limits,
    kernel_terms,
    kernel_ulow,
    rounding,
    scan_tolerances,
    spread_factors,
    tile_bounds,
)
from ._metric import pose_distance, score_threshold
from ._products import StageQueries
from ._tiles import Tiles

logger = logging.getLogger(__name__)

__all__ = ["TopK", "search"]

STAGE_TWO_ROWS = 32  # queries a torch per-joint product takes: its temporaries stay in cache
QUERIES_AT_ONCE = 4096  # the bounds per (query, tile) take 8 bytes each, several times over
BATCH = 4096  # pairs evaluated exactly at once (each call has a fixed cost; the threshold tightens at each)
EXACT_PIECE = (
    1024  # pairs a distance call takes: fresh large arrays cost their page faults (3x the arithmetic)
)


class TopK:
    """Running ``k`` nearest per query, ordered by (distance, id); nothing farther than ``cap`` is kept."""

    def __init__(self, m: int, k: int, cap: float = np.inf) -> None:
        self.k = k
        self.cap = cap
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


class _Pairs:
    """The exact evaluation of candidate pairs, for one block of queries: offered to the top-k at once or batched."""

    def __init__(
        self, top: TopK, tiles: Tiles, queries: np.ndarray, metric: str, exclude: np.ndarray | None
    ) -> None:
        self.top, self.tiles, self.queries, self.metric, self.exclude = top, tiles, queries, metric, exclude
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.waiting = 0
        self.evaluated = 0

    def offer(self, rows: np.ndarray, ids: np.ndarray) -> None:
        """Evaluate the pairs (query ``rows``, clean ``ids``) now and merge them."""
        if self.exclude is not None:
            ok = ids != self.exclude[rows]
            rows, ids = rows[ok], ids[ok]
        if len(rows):
            out = np.empty(len(rows))
            for a in range(0, len(rows), EXACT_PIECE):
                b = a + EXACT_PIECE
                out[a:b] = pose_distance(
                    self.queries[rows[a:b]], self.tiles.poses[ids[a:b]], metric=self.metric
                )
            self.top.merge(rows, ids, out)
        self.evaluated += len(rows)

    def add(self, rows: np.ndarray, ids: np.ndarray) -> None:
        """Queue the pairs; evaluated once a batch is full."""
        self.pending.append((rows, ids))
        self.waiting += len(rows)
        if self.waiting >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            rows = np.concatenate([p[0] for p in self.pending])
            ids = np.concatenate([p[1] for p in self.pending])
            self.pending.clear()
            self.waiting = 0
            self.offer(rows, ids)


def search(
    tiles: Tiles,
    queries: np.ndarray,
    k: int,
    *,
    metric: str,
    hints: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    window: int = 16,
    max_distance: float = np.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest clean poses of checked ``queries (M, J, 4)`` (float32, ``w >= 0``), exactly: ``distances
    (M, k)`` float64 and ``ids (M, k)`` int64 (see :meth:`~amasskit.prior.PoseIndex.search`)."""
    M = len(queries)
    dist = np.empty((M, k))
    ids = np.empty((M, k), dtype=np.int64)
    for a in range(0, M, QUERIES_AT_ONCE):
        b = min(a + QUERIES_AT_ONCE, M)
        q = queries[a:b]
        top = TopK(b - a, k, float(max_distance))
        pairs = _Pairs(top, tiles, q, metric, None if exclude is None else np.asarray(exclude)[a:b])
        if hints is not None:  # the poses around each query's source
            offsets = np.arange(-window, window + 1)
            around = np.clip(
                np.asarray(hints, dtype=np.int64)[a:b, None] + offsets[None, :], 0, tiles.size - 1
            )
            pairs.offer(np.repeat(np.arange(b - a), len(offsets)), around.reshape(-1))
        else:
            _proxy_start(pairs)
        _Scan(pairs).run()
        dist[a:b], ids[a:b] = top.dist, top.ids
    return dist, ids


def _proxy_start(pairs: _Pairs) -> None:
    """Without hints: the poses of largest ``L`` (a proxy; any candidates give a valid start) evaluated exactly."""
    tiles, queries, top = pairs.tiles, pairs.queries, pairs.top
    dev = tiles.flat.device
    Q = torch.from_numpy(queries.reshape(len(queries), -1)).to(dev)
    kp = min(top.k + 1 + (pairs.exclude is not None), tiles.size)
    best_val = torch.full((len(queries), kp), -torch.inf, device=dev)
    best_ids = torch.zeros((len(queries), kp), dtype=torch.long, device=dev)
    for s in range(0, tiles.size, 8192):
        L = Q @ tiles.flat[s : s + 8192].T
        v, i = L.topk(min(kp, L.shape[1]), dim=1)
        vals = torch.cat([best_val, v], 1)
        ids = torch.cat([best_ids, i + s], 1)
        best_val, pick = vals.topk(kp, dim=1)
        best_ids = ids.gather(1, pick)
    rows = np.repeat(np.arange(len(queries)), kp)
    pairs.offer(rows, tiles.order[best_ids.cpu().numpy().reshape(-1)])


def _seed_from_best_tiles(pairs: _Pairs, upper: np.ndarray) -> None:
    """Each query's ``k`` poses of largest ``L`` in its most promising tile (the largest bound), evaluated exactly
    before the scan: the tiles are visited in one order for all queries, and without this start a query whose
    neighbours lie in a late tile would pass many poses on a loose threshold first."""
    tiles, queries = pairs.tiles, pairs.queries
    best = upper.argmax(1)
    dev = tiles.flat.device
    Q = torch.from_numpy(queries.reshape(len(queries), -1)).to(dev)
    rows_all, ids_all = [], []
    for t in np.unique(best):
        rows = np.flatnonzero(best == t)
        s = int(t) * tiles.tile
        block = tiles.flat[s : s + tiles.tile]
        kp = min(pairs.top.k + (pairs.exclude is not None), len(block))
        pick = (Q[torch.from_numpy(rows).to(dev)] @ block.T).topk(kp, dim=1).indices.cpu().numpy()
        rows_all.append(np.repeat(rows, kp))
        ids_all.append(tiles.order[pick.reshape(-1) + s])
    pairs.offer(np.concatenate(rows_all), np.concatenate(ids_all))


class _Scan:
    """One block of queries against every tile: the bounds per (query, tile) once, then tile by tile (best bound
    first) the queries whose bound reaches their threshold, in product blocks through the two stages."""

    def __init__(self, pairs: _Pairs) -> None:
        self.pairs = pairs
        tiles, queries = pairs.tiles, pairs.queries
        self.tiles, self.queries, self.metric = tiles, queries, pairs.metric
        M = len(queries)
        self.dev = tiles.flat.device
        self.upper, self.correction, query_error = tile_bounds(tiles, queries)
        u = rounding(self.dev)
        self.eps, self.shrink, self.joint_error = scan_tolerances(tiles.norm_error, query_error, u)
        # the first stage's queries, with ``eta (M, T)``: the bound on its values' error over each tile
        self.stage: StageQueries = tiles.first_stage.for_queries(queries, u)
        if tiles.blocks is not None:  # the compiled second stage's inputs
            self.kernel_terms = kernel_terms(self.metric, self.shrink, self.joint_error, self.eps)
            self.q_norm = np.sqrt((queries.reshape(M, -1).astype(np.float64) ** 2).sum(1))
            # the kernel bounds the joints it has not added from the tile's balls: unit queries, and a slack for
            # the poses' norms and the float64 rounding of a chord near 0 (a few 1e-8)
            q_unit = queries.astype(np.float64)
            self.q_unit = q_unit / np.linalg.norm(q_unit, axis=-1, keepdims=True)
            self.ball_slack = tiles.norm_error + 1e-7
        else:  # the torch second stage's queries
            self.joint_queries = torch.from_numpy(np.ascontiguousarray(queries.transpose(1, 0, 2))).to(
                self.dev
            )
        # the geodesic's bound from S is loose where a distance is spread over the joints; where no joint's term
        # can be large over a tile (at most m), the concave terms give a tighter one: d >= U acos(1 - m) / m
        self.spread = spread_factors(tiles, queries) if self.metric == "geodesic" else None
        self.scanned = 0

    def run(self) -> None:
        pairs = self.pairs
        _seed_from_best_tiles(pairs, self.upper)
        for t in np.argsort(-self.upper.mean(0), kind="stable"):
            self._tile(int(t))
        pairs.flush()
        M = len(self.queries)
        logger.debug(
            "exact search: %d queries, %.1f%% of the pairs scanned, %.2f exact evaluations per query",
            M,
            100 * self.scanned / (M * self.tiles.size),
            pairs.evaluated / M,
        )

    def _tile(self, t: int) -> None:
        """The queries whose bound over tile ``t`` reaches their threshold, in product blocks."""
        J = self.tiles.joints
        kth = self.pairs.top.kth()
        thr = score_threshold(kth, J, metric=self.metric)
        if self.spread is not None:
            thr = np.maximum(thr, J - kth / self.spread[:, t])
        thr = (thr - SLACK) * self.shrink
        stage = self.stage
        need = np.flatnonzero(self.upper[:, t] + stage.eta[:, t] >= thr)
        if not len(need):
            return
        start = t * self.tiles.tile
        width = min(self.tiles.tile, self.tiles.size - start)
        self.scanned += len(need) * width
        floors = stage.floors(need, thr[need] - self.correction[need, t], t)
        for b0 in range(0, len(need), stage.block):
            rows = need[b0 : b0 + stage.block]
            if self.tiles.blocks is not None:
                self._compiled_block(t, start, width, rows, floors[b0 : b0 + stage.block], kth)
            else:
                self._torch_block(start, width, rows, floors[b0 : b0 + stage.block], kth)

    def _picked(self, rows: np.ndarray) -> slice | torch.Tensor:
        """A run of consecutive queries (the usual case: no tile skipped) is sliced, not gathered."""
        if rows[-1] - rows[0] == len(rows) - 1:
            return slice(int(rows[0]), int(rows[-1]) + 1)
        return torch.from_numpy(rows).to(self.dev)

    def _compiled_block(
        self, t: int, start: int, width: int, rows: np.ndarray, floor: torch.Tensor, kth: np.ndarray
    ) -> None:
        """The compiled stage takes the first stage's values of the rows with a candidate and does the rest
        (candidates, the per-joint bound)."""
        tiles = self.tiles
        assert tiles.blocks is not None
        hit_rows, value = self.stage.values(self._picked(rows), start, start + width, floor)
        if not hit_rows.numel():
            return
        floor_np = floor.numpy()
        if floor_np.dtype.kind == "f":  # finite for the kernel (-inf: every pose a candidate, as this is)
            floor_np = np.maximum(floor_np, np.float32(-3e38))
        hit = hit_rows.numpy()
        lanes = _kernels.LANES
        pad = -width % lanes  # whole blocks of 16: the padding's columns are dropped below
        if pad:
            value = torch.nn.functional.pad(value, (0, pad), value=-(2**30))
        hmax = value.view(len(value), -1, lanes).amax(2)  # torch: numpy's reduction over 16 is slow
        queries = rows[hit]  # the queries with a candidate
        stage = self.stage
        ulow = kernel_ulow(
            tiles,
            queries,
            t,
            stage.at_centre,
            stage.to_score,
            self.q_norm,
            stage.eta,
            self.correction,
            self.shrink,
            tiles.joints,
        )
        ball = (
            self.q_unit[queries],
            tiles.centres[t : t + 1],
            tiles.radii[t : t + 1],
            np.zeros(len(queries), np.int64),
            self.ball_slack,
        )
        kr, kc = _kernels.joint_stage(
            value.numpy(),
            hmax.numpy(),
            floor_np[hit],
            np.ascontiguousarray(self.queries[queries], np.float32),
            tiles.blocks[start // lanes : (start + width + pad) // lanes],
            kernel_limits(kth[queries] + SLACK),
            ulow,
            ball,
            terms=self.kernel_terms,
            root=self.metric != "posendf",
            order=tiles.joint_order,
            threads=torch.get_num_threads(),
        )
        kr, kc = kr[kc < width], kc[kc < width]  # the padding's columns
        if len(kr):
            self.pairs.add(rows[hit[kr]], tiles.order[kc + start])

    def _torch_block(
        self, start: int, width: int, rows: np.ndarray, floor: torch.Tensor, kth: np.ndarray
    ) -> None:
        """The first stage's candidates; rows where many pass (a query far from every pose, or a geodesic distance
        the aggregate bounds loosely) go through the per-joint terms in float32, with their rounding bounded (in
        blocks of queries whose temporaries stay in cache)."""
        tiles = self.tiles
        hit_rows, passed = self.stage.candidates(self._picked(rows), start, start + width, floor)
        if not hit_rows.numel():
            return
        hit_r, hit_c = torch.nonzero(passed, as_tuple=True)
        heavy = torch.nonzero(torch.bincount(hit_r, minlength=len(hit_rows)) > 0.05 * width).squeeze(1)
        if heavy.numel():
            assert tiles.joint_major is not None
            sub = torch.from_numpy(rows).to(self.dev)[hit_rows[heavy]]
            limit = torch.from_numpy(kth[sub.cpu().numpy()] + SLACK).to(self.dev, torch.float32)
            for r0 in range(0, len(sub), STAGE_TWO_ROWS):
                r1 = min(r0 + STAGE_TWO_ROWS, len(sub))
                products = torch.bmm(
                    self.joint_queries[:, sub[r0:r1]], tiles.joint_major[:, :, start : start + width]
                )
                bound = joint_floor(products, self.metric, self.shrink, self.joint_error)
                passed[heavy[r0:r1]] &= bound <= limit[r0:r1, None]
            hit_r, hit_c = torch.nonzero(passed, as_tuple=True)
        if hit_r.numel():
            self.pairs.add(
                rows[hit_rows.cpu().numpy()[hit_r.cpu().numpy()]], tiles.order[hit_c.cpu().numpy() + start]
            )
