"""Compiled kernels for the exact search's per-joint stage (numba; optional: without it the stage runs in torch).

The per-joint bound of a pair of poses (:func:`amasskit.prior.poses._bounds.joint_floor`) is, for each of the ``J``
joints, a product of four numbers, an affine map, a clamp, a square root and a short series, summed. In torch each step is a pass over a ``(J, m,
n)`` block in memory; here one loop does all of them for 16 poses at a time (one AVX-512 register; 8 or 4 lanes
elsewhere), takes its candidates straight from the first stage's values, adds the joints that vary most in the clean
set first, and stops as soon as every pose of the 16 is past its query's limit: the terms are >= 0, and the joints not
yet added have a proven lower bound (from ``U_low``, the first stage's bound on the sum of their ``u_j``, and from the
tile's ball around each joint, by the concavity of the terms; :func:`joint_stage`), so a partial bound past the limit
is a proof. The search runs 5x faster than with the torch stage on the geodesic searches of
``benchmarks/prior_data.py`` (benchmarks/RESULTS.md). numba rather than
torch.compile: the early exit has no torch form, and a compiled extension would need a compiler at install time.

The arithmetic is the torch stage's, in float32, so its error analysis holds as it stands: the products may be
contracted into FMAs and reassociated (the bound ``4u / (1 - 4u)`` on a four-term product holds in any order), the
square root is IEEE (no approximate functions are allowed: ``afn`` and ``arcp`` are not in the flags), the series'
coefficients are rounded down, and the partial sums of non-negative terms round by at most ``J u`` relative, within
the caller's margin; the sums of ``|p_j|`` are raised by ``_USUM_GROW`` for theirs.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["LANES", "SERIES", "available", "joint_stage", "to_blocks"]

LANES = 16
"""Poses a block holds: the kernel's vector width (16 float32 in an AVX-512 register)."""

# the float32 sums of the bounds on u_j round by at most J u <= 3.1e-6 (J <= 51) of themselves, and their product
# with this by u: they are raised by it
_USUM_GROW = np.float32(1 + 8e-6)


def _down(x: float) -> np.float32:
    """``x`` as float32, rounded toward zero (``x >= 0``)."""
    y = np.float32(x)
    return np.nextafter(y, np.float32(0)) if y > x else y


# acos(1 - u) = sqrt(2u) (1 + u/12 + 3u^2/160 + 5u^3/896 + ...) (the series of asin; every term >= 0): cut after four
# terms, a lower bound 0.3% under at u = 1 (the chord sqrt(2u) alone is 11% under); in t = 2u, rounded down
SERIES = tuple(_down(c) for c in (1.0, 1 / 24, 3 / 640, 5 / 7168))
_A0, _A1, _A2, _A3 = SERIES
#: joints between the bound checks (a reduction over the 16 poses): 1.4x faster than checking after every joint on
#: ``benchmarks/prior_data.py``; 2 and 4 measured the same as 3 (benchmarks/RESULTS.md)
_CHECK_EVERY = 3
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


def _acos_low(t: Any) -> Any:
    """``acos(1 - t / 2)`` from below: the cut series (:data:`SERIES`), ``t = 2u >= 0``."""
    return np.sqrt(t) * (_A0 + t * (_A1 + t * (_A2 + t * _A3)))


def _rest_bounds(
    i: int, q64: Any, ball_c: Any, ball_r: Any, ball_of: Any, slack: float, order: Any, root: bool, rest: Any
) -> None:
    """Kernel row ``i``'s bounds on the joints not yet added, after each check (see :func:`joint_stage`): ``rest[i,
    a]`` holds ``(r, s, Lg, Lu)`` for the joints ``order[a:]``, in float32 rounded the safe way."""
    J = q64.shape[1]
    b = ball_of[i]
    lo = np.empty(J)
    hi = np.empty(J)
    for jj in range(J):
        j = order[jj]
        p = abs(
            q64[i, j, 0] * ball_c[b, j, 0]
            + q64[i, j, 1] * ball_c[b, j, 1]
            + q64[i, j, 2] * ball_c[b, j, 2]
            + q64[i, j, 3] * ball_c[b, j, 3]
        )
        msq = ball_c[b, j, 0] ** 2 + ball_c[b, j, 1] ** 2 + ball_c[b, j, 2] ** 2 + ball_c[b, j, 3] ** 2
        chord = np.sqrt(max(1.0 + msq - 2.0 * p, 0.0))  # min over the sign of |q_j - s m_j| (|q_j| = 1)
        near = max(chord - ball_r[b, j] - slack, 0.0)
        far = chord + ball_r[b, j] + slack
        lo[jj] = near * near * 0.5
        hi[jj] = min(far * far * 0.5, 1.0)
    cap = 0.0
    sum_lo = 0.0
    sum_glo = 0.0
    for a in range(J, -1, -1):
        if a < J:
            cap = max(cap, hi[a])
            sum_lo += lo[a]
            t = 2.0 * lo[a]
            sum_glo += _acos_low_inline(t) if root else lo[a]
        if a % _CHECK_EVERY != 0 and a != J:
            continue  # only read after a check
        if a == J:  # nothing left
            r = s = 0.0
        elif root:
            t = 2.0 * cap
            r = _acos_low_inline(t) / cap
            s = 1.0 / np.sqrt(cap * (2.0 - cap))
        else:
            r = s = 1.0
        rest[i, a, 0] = np.float32(r * (1.0 - 1e-6))
        rest[i, a, 1] = np.float32(s * (1.0 - 1e-6))
        rest[i, a, 2] = np.float32(sum_glo * (1.0 - 1e-6))
        rest[i, a, 3] = np.float32(sum_lo * (1.0 + 1e-6) + 1e-12)


def _row(
    i: int,
    h: Any,
    hmax: Any,
    hfloor: Any,
    q: Any,
    blocks: Any,
    limit: Any,
    ulow0: Any,
    uslope: Any,
    rest: Any,
    cols: Any,
    counts: Any,
    offset: Any,
    scale: Any,
    uoff: Any,
    uscale: Any,
    order: Any,
    root: bool,
) -> None:
    """Kernel row ``i``: see :func:`joint_stage`."""
    J = q.shape[1]
    n = h.shape[1]
    acc = np.empty(LANES, np.float32)
    sum_p = np.empty(LANES, np.float32)
    ulow = np.empty(LANES, np.float32)
    bound = np.empty(LANES, np.float32)
    lim, hf, c0, sl = limit[i], hfloor[i], ulow0[i], uslope[i]
    zero = np.float32(0.0)
    big = np.float32(1e30)  # finite: the flags let the compiler assume no infinities
    found = 0
    for bb in range(n // LANES):
        if hmax[i, bb] < hf:  # no candidate among the 16: most blocks end here
            continue
        b = bb * LANES
        for lane in range(LANES):
            value = h[i, b + lane]
            ulow[lane] = c0 - sl * np.float32(value)
            acc[lane] = zero if value >= hf else big
            sum_p[lane] = zero
        added = 0
        for jj in range(J):
            j = order[jj]
            q0, q1, q2, q3 = q[i, j, 0], q[i, j, 1], q[i, j, 2], q[i, j, 3]
            for lane in range(LANES):
                p = q0 * blocks[bb, j, 0, lane] + q1 * blocks[bb, j, 1, lane] + q2 * blocks[bb, j, 2, lane]
                p += q3 * blocks[bb, j, 3, lane]
                ap = abs(p)
                t = max(offset - scale * ap, zero)
                acc[lane] += _acos_low_inline(t) if root else t
                sum_p[lane] += ap
            added = jj + 1
            if added % _CHECK_EVERY == 0:  # the bound of every pose (a reduction: not after every joint)
                u_added = np.float32(added) * uoff
                r, s, lg, lu = rest[i, added, 0], rest[i, added, 1], rest[i, added, 2], rest[i, added, 3]
                # the bound of each pose, then a count of those within the limit: two loops the compiler vectorises
                # (one loop with a running minimum stayed scalar: the check then cost more than the joints it saved)
                for lane in range(LANES):
                    left = max(ulow[lane] - (u_added - uscale * sum_p[lane]) * _USUM_GROW, zero)
                    bound[lane] = acc[lane] + max(r * left, lg + s * max(left - lu, zero))
                within = 0
                for lane in range(LANES):
                    within += bound[lane] <= lim
                if within == 0:
                    break
        if added < J:  # decided early: none of the 16 is kept
            continue
        for lane in range(LANES):  # every joint added: nothing is left to bound
            if acc[lane] <= lim:
                cols[i, found] = b + lane
                found += 1
    counts[i] = found


def _stage_loop(
    h: Any,
    hmax: Any,
    hfloor: Any,
    q: Any,
    blocks: Any,
    limit: Any,
    ulow0: Any,
    uslope: Any,
    q64: Any,
    ball_c: Any,
    ball_r: Any,
    ball_of: Any,
    slack: Any,
    cols: Any,
    counts: Any,
    offset: Any,
    scale: Any,
    uoff: Any,
    uscale: Any,
    order: Any,
    root: Any,
) -> None:
    """Every kernel row in parallel. One kernel for both metrics: ``root`` is a run-time flag (the compiler takes
    its test out of the loops; measured no slower than a kernel per metric). The bounds on the joints left are
    computed first, in a pass of their own (written in the rows' loop, they cost it 15%: the compiler no longer
    kept the lanes' sums in registers)."""
    rest = np.empty((q.shape[0], q.shape[1] + 1, 4), np.float32)
    for i in _prange(q.shape[0]):
        _rest_bounds_inline(i, q64, ball_c, ball_r, ball_of, slack, order, root, rest)
    for i in _prange(q.shape[0]):
        _row_inline(
            i,
            h,
            hmax,
            hfloor,
            q,
            blocks,
            limit,
            ulow0,
            uslope,
            rest,
            cols,
            counts,
            offset,
            scale,
            uoff,
            uscale,
            order,
            root,
        )


def _gather_loop(cols: Any, counts: Any) -> tuple[Any, Any]:
    """The kept ``(row, column)`` pairs, in row order: ``counts[i]`` columns of ``cols[i]``."""
    total = 0
    for i in range(len(counts)):
        total += counts[i]
    out_rows = np.empty(total, np.int64)
    out_cols = np.empty(total, np.int64)
    k = 0
    for i in range(len(counts)):
        for c in range(counts[i]):
            out_rows[k] = i
            out_cols[k] = cols[i, c]
            k += 1
    return out_rows, out_cols


def _compile(fn: Any, **options: Any) -> Any:
    """``fn`` compiled by numba, its machine code cached on disk where numba can write (beside this module, else in
    the user's cache folder); where it can write nowhere, compiled in each process instead of failing the import."""
    try:
        return _NUMBA.njit(cache=True, **options)(fn)
    except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available"
        logger.debug("numba cannot cache %s (%s): it is compiled in each process", fn.__name__, exc)
        return _NUMBA.njit(**options)(fn)


_prange: Any = range
_acos_low_inline: Any = _acos_low  # compiled below where numba is
if _NUMBA is not None:
    _acos_low_inline = _NUMBA.njit(inline="always", fastmath=_FASTMATH, boundscheck=False)(_acos_low)
    _rest_bounds_inline = _NUMBA.njit(inline="always", fastmath=_FASTMATH, boundscheck=False)(_rest_bounds)
    _row_inline = _NUMBA.njit(inline="always", fastmath=_FASTMATH, boundscheck=False)(_row)
    _prange = _NUMBA.prange
    _stage = _compile(_stage_loop, parallel=True, fastmath=_FASTMATH, boundscheck=False, nogil=True)
    _gather = _compile(_gather_loop, nogil=True)


def joint_stage(
    first: np.ndarray,
    hmax: np.ndarray,
    floor: np.ndarray,
    q: np.ndarray,
    blocks: np.ndarray,
    limit: np.ndarray,
    ulow: tuple[np.ndarray, np.ndarray],
    ball: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float],
    *,
    terms: tuple[float, float, float, float],
    root: bool,
    order: np.ndarray,
    threads: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The candidates of the first stage that the per-joint bound keeps: ``(i, column)`` pairs, ``(K,)`` int64 each,
    by kernel row.

    For kernel row ``i`` (query ``q[i]``, row ``i`` of the first stage's values) and pose ``c``:

    * the first stage's value ``h = first[i, c]`` (``(m, n)``: the integers ``H`` of the CPU's products, or
      a float32 product; ``hmax (m, nb)`` the largest of each block of 16, so that a block without a candidate is
      skipped on it); the pose is a candidate where ``h >= floor[i]``, and ``U_low = ulow0[i] - uslope[i] h`` is
      a lower bound on its ``U = J - sum_j c_j`` (``ulow = (ulow0, uslope)`` float32 ``(m,)``);
    * joint by joint in ``order``: ``t_j = max(offset - scale |p_j|, 0)`` (its square root where ``root``) added to a
      sum, and ``|p_j|`` to another, so that ``added uoff - uscale sum |p_j|`` bounds the ``u_j = 1 - c_j`` added
      (``terms = (offset, scale, uoff, uscale)``), and ``left = (U_low - sum u_j)^+`` the ``u_j`` not yet added;
    * the joints not yet added are bounded from a ball around each of them that holds the columns' poses: ``ball =
      (q64, centres, radii, of, slack)``, ``q64 (m, J, 4)`` float64 the rows' queries as unit quaternions, row ``i``'s
      ball ``centres[of[i]] (J, 4)`` and ``radii[of[i]] (J,)`` (float64, with ``|x_j - centre_j| <= radius_j`` for
      every column's pose, ``slack`` >= its norms' distance from 1 plus 1e-7). Over the ball ``lo_j <= u_j <=
      hi_j``, and with ``g(u) = acos(1 - u)`` (``u`` for posendf) concave: the joints left are worth at least
      ``max(r left, Lg + s (left - Lu)^+)``, ``r = g(M) / M`` and ``s = g'(M)`` for ``M`` their largest ``hi_j``
      (every ``u_j <= M``: above the chord from 0, and above the chords from ``lo_j``, whose slopes are at least
      ``g'(M)``), ``Lg`` and ``Lu`` the sums of their ``g(lo_j)`` and ``lo_j``;
    * 16 poses at a time, until every one is past ``limit[i]`` (checked every few joints: the check is a reduction
      over the 16); the poses that stay within it are returned.

    ``blocks (nb, J, 4, 16)`` holds the poses of the columns (:func:`to_blocks`), ``n = 16 nb``; ``limit`` float32,
    raised for the sums' rounding.
    """
    if _NUMBA is None:  # pragma: no cover - callers check available()
        raise RuntimeError("numba is not installed (pip install 'amasskit[search]')")
    if first.shape[1] != blocks.shape[0] * LANES:
        raise ValueError("the first stage's values must cover the blocks' columns")
    if hmax.shape != (len(first), blocks.shape[0]):
        raise ValueError("hmax must hold the largest value of each block of 16 columns")
    q64, centres, radii, of, slack = ball
    if q64.shape != q.shape or centres.shape[1:] != q.shape[1:] or radii.shape != centres.shape[:2]:
        raise ValueError("the balls must be (nt, J, 4) centres and (nt, J) radii for (m, J, 4) queries")
    cols = np.empty((len(q), first.shape[1]), np.int32)
    counts = np.empty(len(q), np.int64)
    before = _NUMBA.get_num_threads()  # the caller's setting, restored below: nothing process-wide changes
    _NUMBA.set_num_threads(max(1, min(threads, _NUMBA.config.NUMBA_NUM_THREADS)))
    try:
        offset, scale, uoff, uscale = (np.float32(x) for x in terms)
        _stage(
            first,
            hmax,
            floor,
            q,
            blocks,
            limit,
            *ulow,
            q64,
            centres,
            radii,
            of,
            float(slack),
            cols,
            counts,
            offset,
            scale,
            uoff,
            uscale,
            order,
            root,
        )
    finally:
        _NUMBA.set_num_threads(before)
    found: tuple[np.ndarray, np.ndarray] = _gather(cols, counts)
    return found
