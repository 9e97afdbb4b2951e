"""The exact search's first stage: for every (query, pose) pair of a block, a cheap value whose error from the inner
product ``<q, x>`` (the 4J-vectors) is bounded, so that a pose whose bound cannot reach a query's floor is dropped
without its distance.

Two kinds behind one interface (:class:`FirstStage` builds, per scan, a :class:`StageQueries`):

* :class:`Int8Products` (CPU): the poses about their mean, scaled per coordinate into [-127, 127] and split into two
  int8 parts, multiplied exactly in int32 (two products, 84 and 168 terms a pair for 21 joints; about 2.6-2.8x the
  speed of float32 products on a CPU with VNNI, ``benchmarks/prior_data.py``); the bound covers the low parts'
  product left out and the parts' rounding (Cauchy-Schwarz on per-tile norms; about 1e-3 of ``<q, x>``).
* :class:`CentredProducts` (a GPU, or asked for): float32 products about the mean pose, ``<q, x> = <q, c> +
  <[q - c, 1], [x - c, <c, x - c>]>``, with their rounding bounded (``gamma_K |Q'| |X'|``, larger where CUDA may use
  TF32, and the rounding of the stored rows; about 1e-5 where the poses are alike).

Both give, per query, ``<q, x> ~ at_centre + to_score * value`` with ``|error| <= eta`` over each tile; a floor on
``<q, x>`` becomes a floor on ``value`` in the stage's own units (:meth:`StageQueries.floors`), compared in
:meth:`StageQueries.values` (the rows with a candidate and their values) and :meth:`StageQueries.candidates` (which
poses of those rows pass).

The integer form, with a centre ``c`` and per-coordinate radii ``r`` of the clean set (4J coordinates): ``A = 127
(x - c) / r`` lies in [-127, 127] and is split into two int8 parts, ``A = hi + lo / 254 + e`` with ``|e| <= 1 / 508``
a coordinate; a query's ``B = (q * r) / s`` (``s = max |q * r| / 127``) likewise. Then

    ``<q, x> = <q, c> + (s / 127) <B, A>``   and
    ``<B, A> = G1 + G2 / 254 + R``, ``G1 = <B_hi, A_hi>``, ``G2 = <B_lo, A_hi> + <B_hi, A_lo>`` (exact in int32),
    ``R = <B_lo, A_lo> / 254^2 + <e_B, A> + <B_hi + B_lo / 254, e_A>``, so
    ``|R| <= |B_lo| |A_lo| / 254^2 + |e_B| |A| + |B_hi + B_lo / 254| |e_A|`` (Cauchy-Schwarz),

the norms on the clean side taken as their largest over a tile. ``H = 254 G1 + G2`` is compared, in integers, with
the floor each query's threshold implies. The float64 arithmetic that makes ``A``, ``B`` and the floors is covered by
a relative slack of 1e-9 of ``|B| |A|`` (its rounding is about 1e-15 of it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import torch

__all__ = ["CentredProducts", "CentredQueries", "FirstStage", "Int8Products", "Int8Queries", "StageQueries"]

I8: Final[int] = 127
LOW: Final[int] = 254
#: queries a product call takes: integer products are fewer, larger calls (measured best on ``benchmarks/prior_data.py``);
#: float32 products keep a block's output in cache
INT8_QUERY_BLOCK: Final[int] = 1024
FLOAT32_QUERY_BLOCK: Final[int] = 256


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a (..., D)`` float64 in [-127, 127] as ``hi + lo / 254 + e``: ``hi``, ``lo`` int8 and ``e`` float64."""
    hi = np.rint(a)
    lo = np.rint((a - hi) * LOW)
    return hi.astype(np.int8), lo.astype(np.int8), a - hi - lo / LOW


def _grown(norm: np.ndarray) -> np.ndarray:
    return norm * (1 + 1e-9) + 1e-12


class StageQueries:
    """One scan's queries in a first stage's form.

    Attributes:
        eta: ``(M, T)`` the bound on ``|<q, x> - at_centre - to_score value|`` over each tile, in score units.
        at_centre: ``(M,)`` ``<q, c>``; to_score: ``(M,)`` a value's scale in score units.
        block: queries a product call takes.
    """

    eta: np.ndarray
    at_centre: np.ndarray
    to_score: np.ndarray
    block: int

    def floors(self, rows: np.ndarray, target: np.ndarray, t: int) -> torch.Tensor:
        """The least value of a pose of tile ``t`` whose ``<q, x>`` can reach ``target`` (``(len(rows),)`` score
        units), for queries ``rows``, in the stage's units, rounded so that no pose within the bound is lost."""
        raise NotImplementedError

    def values(
        self, rows: slice | torch.Tensor, start: int, stop: int, floor: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows of a block (queries ``rows`` x poses ``start:stop``) with a pose whose value reaches the row's
        ``floor``, and those rows' values: ``(hit_rows, values (len(hit_rows), stop - start))``. Most rows are
        dropped without forming their values."""
        raise NotImplementedError

    def candidates(
        self, rows: slice | torch.Tensor, start: int, stop: int, floor: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(hit_rows, passed)``: as :meth:`values`, with which poses of each such row reach its floor."""
        hit_rows, values = self.values(rows, start, stop, floor)
        if not hit_rows.numel():
            return hit_rows, torch.empty((0, stop - start), dtype=torch.bool)
        return hit_rows, values >= floor[hit_rows, None]


class FirstStage:
    """A first stage built over the clean poses (in tile order); :meth:`for_queries` prepares a scan's queries."""

    kind: str  # "int8" or "float32"

    def for_queries(self, queries: np.ndarray, rounding: float) -> StageQueries:
        """``queries (M, J, 4)`` float32 (``w >= 0``); ``rounding``: the device's unit roundoff (float32 products)."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Int8Queries(StageQueries):
    stage: Int8Products
    hi: torch.Tensor  # (M, D) int8
    lo_hi: torch.Tensor  # (M, 2 D) int8: [B_lo | B_hi], against [A_hi | A_lo]
    to_score: np.ndarray  # (M,) H -> <q, x - c>
    at_centre: np.ndarray  # (M,) <q, c>
    norm_b: np.ndarray
    norm_lo: np.ndarray
    norm_e: np.ndarray
    norm_whole: np.ndarray
    eta: np.ndarray
    block: int = INT8_QUERY_BLOCK

    def floors(self, rows: np.ndarray, target: np.ndarray, t: int) -> torch.Tensor:
        """int32, one lower, for the float64 rounding of the floor."""
        h = (target - self.at_centre[rows] - self.eta[rows, t]) / self.to_score[rows]
        h = np.floor(np.nan_to_num(h, nan=-np.inf, neginf=-(2.0**31), posinf=2.0**31 - 1)) - 1
        return torch.from_numpy(np.clip(h, -(2.0**31), 2.0**31 - 1).astype(np.int32))

    def products(
        self, rows: slice | torch.Tensor, start: int, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``G1, G2`` int32 ``(m, stop - start)`` of queries ``rows`` and poses ``start:stop``."""
        D = self.stage.centre.shape[0]
        block = self.stage.parts[start:stop]
        return torch._int_mm(self.hi[rows], block[:, :D].T), torch._int_mm(self.lo_hi[rows], block.T)

    def values(
        self, rows: slice | torch.Tensor, start: int, stop: int, floor: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``H = 254 G1 + G2`` (no overflow: checked when built); a row is looked into only where ``max H <= 254
        max G1 + max G2`` can reach its floor."""
        g1, g2 = self.products(rows, start, stop)
        hit_rows = torch.nonzero(g1.amax(1).mul_(LOW).add_(g2.amax(1)) >= floor).squeeze(1)
        if not hit_rows.numel():
            return hit_rows, g1[:0]
        return hit_rows, g1[hit_rows].mul_(LOW).add_(g2[hit_rows])


@dataclass(frozen=True, eq=False)
class Int8Products(FirstStage):
    """The clean poses' integer parts ``[A_hi | A_lo] (N, 2D)`` int8, the centre and radii ``(D,)``, and per tile the
    largest ``|A|``, ``|A_lo|`` and ``|e_A|`` ``(T,)``."""

    parts: torch.Tensor
    centre: np.ndarray
    radii: np.ndarray
    norm_a: np.ndarray
    norm_lo: np.ndarray
    norm_e: np.ndarray
    kind: str = "int8"

    @classmethod
    def build(cls, flat: np.ndarray, tile: int, centre: np.ndarray) -> Int8Products | None:
        """``flat (N, D)`` float32 and its mean ``centre``; None where torch has no integer products here or int32
        could overflow."""
        N, D = flat.shape
        if 2 * D * I8 * I8 * LOW >= 2**31 or not hasattr(torch, "_int_mm"):
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
            a = (flat[t * tile : (t + 1) * tile] - centre) * (I8 / radii)
            # |x - c| <= r, so nothing is clipped but the float64 rounding; e keeps the identity exact either way
            hi, lo, e = _split(np.clip(a, -I8, I8))
            e += a - np.clip(a, -I8, I8)
            parts[t * tile : (t + 1) * tile, :D], parts[t * tile : (t + 1) * tile, D:] = hi, lo
            norm_a[t] = np.sqrt((a * a).sum(1)).max()
            norm_lo[t] = np.sqrt((lo.astype(np.float64) ** 2).sum(1)).max()
            norm_e[t] = np.sqrt((e * e).sum(1)).max()
        return cls(torch.from_numpy(parts), centre, radii, _grown(norm_a), _grown(norm_lo), _grown(norm_e))

    def for_queries(self, queries: np.ndarray, rounding: float = 0.0) -> Int8Queries:
        """The queries in the same integer form (exact products: ``rounding`` does not enter)."""
        q = queries.reshape(len(queries), -1).astype(np.float64)
        scaled = q * self.radii
        scale = np.abs(scaled).max(1) / I8
        scale = np.where(scale > 0, scale, 1.0)
        b = scaled / scale[:, None]
        hi, lo, e = _split(np.clip(b, -I8, I8))
        e += b - np.clip(b, -I8, I8)
        whole = hi + lo / LOW
        to_score = scale / I8 / LOW
        norm_b = _grown(np.sqrt((b * b).sum(1)))
        norm_lo = _grown(np.sqrt((lo.astype(np.float64) ** 2).sum(1)))
        norm_e = _grown(np.sqrt((e * e).sum(1)))
        norm_whole = _grown(np.sqrt((whole * whole).sum(1)))
        r = (
            np.outer(norm_lo, self.norm_lo) / (LOW * LOW)
            + np.outer(norm_e, self.norm_a)
            + np.outer(norm_whole, self.norm_e)
            + 1e-9 * np.outer(norm_b, self.norm_a)
        )
        return Int8Queries(
            stage=self,
            hi=torch.from_numpy(hi),
            lo_hi=torch.from_numpy(np.concatenate([lo, hi], 1)),
            to_score=to_score,
            at_centre=q @ self.centre,
            norm_b=norm_b,
            norm_lo=norm_lo,
            norm_e=norm_e,
            norm_whole=norm_whole,
            eta=r * (to_score * LOW)[:, None],
        )


@dataclass(frozen=True, eq=False)
class CentredQueries(StageQueries):
    stage: CentredProducts
    rows: torch.Tensor  # (M, 4J + 1) float32 on the device: [q - c, 1]
    eta: np.ndarray
    at_centre: np.ndarray
    to_score: np.ndarray
    block: int = FLOAT32_QUERY_BLOCK

    def floors(self, rows: np.ndarray, target: np.ndarray, t: int) -> torch.Tensor:
        """float32, rounded down a step more, so no pose within the bound is lost to their rounding."""
        dev = self.rows.device
        down = torch.tensor(-torch.inf, device=dev)
        floor = target - self.at_centre[rows] - self.eta[rows, t]
        return torch.nextafter(torch.from_numpy(floor).to(dev, torch.float32), down)

    def values(
        self, rows: slice | torch.Tensor, start: int, stop: int, floor: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        products = self.rows[rows] @ self.stage.rows[start:stop].T
        hit_rows = torch.nonzero(products.amax(1) >= floor).squeeze(1)
        return hit_rows, products[hit_rows]


@dataclass(frozen=True, eq=False)
class CentredProducts(FirstStage):
    """The clean poses for float32 products about their mean ``c``: rows ``[x - c, <c, x - c>]`` rounded to float32
    ``(N, 4J + 1)`` on the device, and per tile the largest ``|stored row|`` and ``|stored - exact row|`` ``(T,)``."""

    rows: torch.Tensor
    norms: np.ndarray
    error: np.ndarray
    centre: np.ndarray
    kind: str = "float32"

    @classmethod
    def build(
        cls, flat: np.ndarray, tile: int, centre: np.ndarray, device: str | torch.device
    ) -> CentredProducts:
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
        return cls(torch.from_numpy(rows).to(device), norms * grow, error * grow + 1e-12, centre)

    def for_queries(self, queries: np.ndarray, rounding: float) -> CentredQueries:
        """``[q - c, 1]`` rounded to float32, and ``eta (M, T)``: the product's rounding ``gamma_K |Q'| |X'|`` for
        unit roundoff ``rounding``, and that of storing the centred rows in float32, on both sides."""
        M = len(queries)
        K = self.rows.shape[1]
        gamma = K * rounding / (1 - K * rounding)
        q_flat = queries.reshape(M, -1).astype(np.float64)
        q_exact = np.concatenate([q_flat - self.centre, np.ones((M, 1))], 1)
        Q = torch.from_numpy(q_exact.astype(np.float32))
        q_stored = Q.numpy().astype(np.float64)
        q_norm = np.sqrt((q_stored * q_stored).sum(1))
        q_error = np.sqrt(((q_stored - q_exact) ** 2).sum(1)) * (1 + 1e-12) + 1e-12
        eta = (
            gamma * np.outer(q_norm, self.norms)
            + np.outer(q_error, self.norms + self.error)
            + np.outer(q_norm, self.error)
        )
        return CentredQueries(
            stage=self,
            rows=Q.to(self.rows.device),
            eta=eta * (1 + 1e-9) + 1e-30,
            at_centre=q_flat @ self.centre,
            to_score=np.ones(M),
        )
