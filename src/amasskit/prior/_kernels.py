"""Compiled kernels for the exact search's per-joint stage (numba; optional: without it the stage runs in torch).

The per-joint bound of a pair of poses (:func:`amasskit.prior._knn._joint_floor`) is 21 products of four numbers, an
affine map, a clamp and a square root per joint, summed. In torch each step is a pass over a ``(J, m, n)`` block in
memory; here one loop does all of them for 16 poses at a time (one AVX-512 register; 8 or 4 lanes elsewhere), in the
order of the joints that vary most in the clean set, and stops as soon as every pose of the 16 is past its query's
limit (the terms are >= 0, so a partial sum past the limit is a proof). Measured on the benchmark's geodesic searches:
2-5x the torch stage's pairs a second (benchmarks/RESULTS.md). numba rather than torch.compile: the early exit has no
torch form, and a compiled extension would need a compiler at install time.

The arithmetic is the torch stage's, in float32, so its error analysis holds as it stands: the products may be
contracted into FMAs and reassociated (the bound ``4u / (1 - 4u)`` on a four-term product holds in any order), the
square root is IEEE (no approximate functions are allowed: ``afn`` and ``arcp`` are not in the flags), and the partial
sums of non-negative terms round by at most ``J u`` relative, within the caller's margin.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["LANES", "available", "joint_floor_pass", "to_blocks"]

LANES = 16
"""Poses a block holds: the kernel's vector width (16 float32 in an AVX-512 register)."""

# IEEE sqrt and division kept: no "afn" (approximate functions), no "arcp" (reciprocal approximations)
_FASTMATH = {"nnan", "ninf", "nsz", "contract", "reassoc"}

try:  # pragma: no branch - one of the two, by environment
    import numba

    _NUMBA: Any = numba
except ImportError:  # the torch stage runs instead
    _NUMBA = None


def available() -> bool:
    """Whether numba is importable here (the ``search`` extra)."""
    return _NUMBA is not None


def to_blocks(poses: np.ndarray) -> np.ndarray:
    """``poses (N, J, 4)`` float32 as ``(ceil(N / 16), J, 4, 16)``: each block 16 poses, component-major (a lane a
    pose); the last block padded with zeros (a zero pose is never within a limit: its terms are the largest)."""
    N, J = poses.shape[:2]
    nb = -(-N // LANES)
    out = np.zeros((nb, J, 4, LANES), np.float32)
    for b0 in range(0, nb, 4096):  # in pieces: no second copy of the whole set
        b1 = min(b0 + 4096, nb)
        piece = poses[b0 * LANES : b1 * LANES]
        full = len(piece) // LANES
        out[b0 : b0 + full] = piece[: full * LANES].reshape(full, LANES, J, 4).transpose(0, 2, 3, 1)
        rest = len(piece) - full * LANES
        if rest:
            out[b0 + full, :, :, :rest] = piece[full * LANES :].transpose(1, 2, 0)
    return out


def _row(r: int, q: Any, blocks: Any, limit: Any, passed: Any, offset: Any, scale: Any, order: Any,
         root: bool) -> None:  # fmt: skip
    """One query row: every block of 16 poses with a candidate left is bounded, joint by joint, until all 16 are
    past the limit; the poses whose bound stays within it keep their ``passed`` flag."""
    J = q.shape[1]
    n = passed.shape[1]
    acc = np.empty(LANES, np.float32)
    lim = limit[r]
    zero = np.float32(0.0)
    for bb in range((n + LANES - 1) // LANES):
        b = bb * LANES
        lanes = min(LANES, n - b)
        anyp = False
        for lane in range(lanes):
            anyp |= passed[r, b + lane]
        if not anyp:
            continue
        for lane in range(LANES):
            acc[lane] = zero
        for jj in range(J):
            j = order[jj]
            q0, q1, q2, q3 = q[r, j, 0], q[r, j, 1], q[r, j, 2], q[r, j, 3]
            for lane in range(LANES):
                p = q0 * blocks[bb, j, 0, lane] + q1 * blocks[bb, j, 1, lane] + q2 * blocks[bb, j, 2, lane]
                p += q3 * blocks[bb, j, 3, lane]
                t = max(offset - scale * abs(p), zero)
                acc[lane] += np.sqrt(t) if root else t
            low = acc[0]
            for lane in range(1, LANES):
                low = min(low, acc[lane])
            if low > lim:
                break
        for lane in range(lanes):
            passed[r, b + lane] &= acc[lane] <= lim


if _NUMBA is not None:
    _row_inline = _NUMBA.njit(inline="always", fastmath=_FASTMATH, boundscheck=False)(_row)
    _prange = _NUMBA.prange

    @_NUMBA.njit(parallel=True, fastmath=_FASTMATH, boundscheck=False, cache=True, nogil=True)
    def _pass_root(q, blocks, limit, passed, offset, scale, order):  # type: ignore[no-untyped-def]
        for r in _prange(q.shape[0]):
            _row_inline(r, q, blocks, limit, passed, offset, scale, order, True)

    @_NUMBA.njit(parallel=True, fastmath=_FASTMATH, boundscheck=False, cache=True, nogil=True)
    def _pass_linear(q, blocks, limit, passed, offset, scale, order):  # type: ignore[no-untyped-def]
        for r in _prange(q.shape[0]):
            _row_inline(r, q, blocks, limit, passed, offset, scale, order, False)


def joint_floor_pass(
    q: np.ndarray,
    blocks: np.ndarray,
    limit: np.ndarray,
    passed: np.ndarray,
    *,
    offset: float,
    scale: float,
    root: bool,
    order: np.ndarray,
    threads: int,
) -> None:
    """Clear ``passed[r, c]`` where the per-joint bound of query ``r`` and pose ``c`` exceeds ``limit[r]``.

    Args:
        q: ``(m, J, 4)`` float32 query rows.
        blocks: ``(nb, J, 4, 16)`` float32 (:func:`to_blocks`): the poses of ``passed``'s columns, block-aligned.
        limit: ``(m,)`` float32, already raised for the partial sums' rounding.
        passed: ``(m, n)`` bool, ``n <= 16 nb``, updated in place (only its set entries are looked at).
        offset, scale: the per-joint term is ``max(offset - scale |p_j|, 0)``, its square root where ``root``.
        order: ``(J,)`` int64: the joints in the order they are added (the most varied first: earlier exits).
        threads: numba threads (at most its configured number).
    """
    if _NUMBA is None:  # pragma: no cover - callers check available()
        raise RuntimeError("numba is not installed (pip install 'amasskit[search]')")
    _NUMBA.set_num_threads(max(1, min(threads, _NUMBA.config.NUMBA_NUM_THREADS)))
    kernel = _pass_root if root else _pass_linear
    kernel(q, blocks, limit, passed, np.float32(offset), np.float32(scale), order)
