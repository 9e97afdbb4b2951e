"""The exact search against brute force, and the metrics against a plain scalar reimplementation; each of the
search's bounds (its documented internal parts: ``_tiles``, ``_products``, ``_bounds``, ``_kernels``) on every pair
against float64 truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from amasskit.errors import InvalidArgumentError
from amasskit.prior import NoiseConfig, PoseIndex, knn_brute_force, perturb, pose_distance
from amasskit.prior.poses import _bounds, _kernels, _scan
from amasskit.prior.poses._products import CentredProducts, Int8Products
from amasskit.prior.poses._tiles import Tiles
from amasskit.synth import synth_pose_set


def _plain_distance(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    """One pair, in Python floats."""
    total = 0.0
    for qa, qb in zip(a.tolist(), b.tolist(), strict=True):
        dot = sum(x * y for x, y in zip(qa, qb, strict=True))
        c = min(1.0, abs(dot) / math.sqrt(sum(x * x for x in qa) * sum(y * y for y in qb)))
        total += (1.0 - c) if metric == "posendf" else math.acos(c)
    return total


def knn(
    index: PoseIndex, queries: np.ndarray, k: int, *, metric: str, **options: object
) -> tuple[np.ndarray, ...]:
    """The search under ``metric`` (the index's prepared poses shared)."""
    return index.with_metric(metric).search(queries, k, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    poses, _ = synth_pose_set(6000, seed=3)
    rng = np.random.default_rng(0)
    # the double cover: some poses with w near 0 and stored with either sign, and exact duplicates
    near_pi = poses[100:140].copy()
    near_pi[..., 3] = rng.uniform(-1e-4, 1e-4, near_pi.shape[:2])
    near_pi /= np.linalg.norm(near_pi, axis=-1, keepdims=True)
    poses[100:140] = near_pi * rng.choice([-1.0, 1.0], size=(40, 21, 1)).astype(np.float32)
    poses[200:210] = poses[300]  # ten copies of one pose
    return poses


@pytest.mark.parametrize("metric", ["posendf", "geodesic"])
def test_metric_matches_a_plain_scalar_reimplementation(clean: np.ndarray, metric: str) -> None:
    rng = np.random.default_rng(1)
    a, b = clean[rng.integers(0, len(clean), 50)], clean[rng.integers(0, len(clean), 50)]
    b[::2] = -b[::2]  # the sign of a quaternion does not matter
    got = pose_distance(a, b, metric=metric)
    want = np.array([_plain_distance(x, y, metric) for x, y in zip(a, b, strict=True)])
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.all(pose_distance(a, a, metric=metric) <= 1e-6)  # float32 storage is no distance
    # the differentiable terms (the reference fields') are the same metric
    from amasskit.prior.poses import joint_terms

    ua, ub = (torch.nn.functional.normalize(torch.from_numpy(x).double(), dim=-1) for x in (a, b))
    cos = (ua * ub).sum(-1).abs().requires_grad_(True)
    terms = joint_terms(cos, metric).sum(-1)
    assert np.allclose(terms.detach().numpy(), want, rtol=1e-9, atol=1e-9)
    terms.sum().backward()
    assert cos.grad is not None and torch.isfinite(cos.grad).all()


def _queries(clean: np.ndarray, scheme: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    source = np.concatenate([rng.integers(0, len(clean), 60), np.arange(100, 110), [205, 300]])
    noisy, _, _ = perturb(clean[source], samples=2, noise=NoiseConfig(scheme), seed=seed)
    queries = noisy.reshape(-1, 21, 4)
    queries[::3] = -queries[::3]  # queries of either sign
    return queries, np.repeat(source, 2)


@pytest.mark.parametrize("metric", ["posendf", "geodesic"])
@pytest.mark.parametrize("scheme", ["posendf", "nrdf", "haar"])
def test_exact_search_equals_brute_force(clean: np.ndarray, metric: str, scheme: str) -> None:
    queries, hints = _queries(clean, scheme, seed=5)
    want_d, want_i = knn_brute_force(clean, queries, 5, metric=metric)
    for tile, stage in ((64, "auto"), (1024, "auto"), (1024, "torch")):
        index = PoseIndex.build(clean, tile=tile, joint_stage=stage)
        for h in (hints, None):
            got_d, got_i = knn(index, queries, 5, metric=metric, hints=h)
            assert np.array_equal(got_i, want_i)
            assert np.array_equal(got_d, want_d)  # the same float64 bits: one definition of the distance


@pytest.mark.parametrize("joints", [51, 2])
def test_exact_search_equals_brute_force_for_other_joint_sets(clean: np.ndarray, joints: int) -> None:
    """Body and hands (51 joints: the compiled stage checks at 17 points, its bounds on the joints left over longer
    suffixes) and a set of two joints (no check before the last joint): the same neighbours and distances as brute
    force, for both metrics and both per-joint stages."""
    rng = np.random.default_rng(61)
    if joints == 51:  # the body, and hands near their rest pose with alike variations
        hands = rng.normal(0, 0.15, (len(clean), 30, 4)) + np.array([0.0, 0.0, 0.0, 1.0])
        poses = np.concatenate([clean, hands.astype(np.float32)], 1)
    else:
        poses = clean[:, :2].copy()
    poses /= np.linalg.norm(poses, axis=-1, keepdims=True)
    source = rng.integers(0, len(poses), 40)
    noisy, _, _ = perturb(poses[source], samples=2, noise=NoiseConfig("nrdf"), seed=61)
    queries = noisy.reshape(-1, joints, 4)
    for metric in ("posendf", "geodesic"):
        want_d, want_i = knn_brute_force(poses, queries, 4, metric=metric)
        for stage in ("auto", "torch"):
            index = PoseIndex.build(poses, tile=256, joint_stage=stage)
            got_d, got_i = knn(index, queries, 4, metric=metric, hints=np.repeat(source, 2))
            assert np.array_equal(got_i, want_i) and np.array_equal(got_d, want_d), (metric, stage)


def test_duplicates_tie_by_id_and_clean_queries_find_themselves(clean: np.ndarray) -> None:
    index = PoseIndex.build(clean, tile=128)
    d, i = knn(index, clean[[300, 205, 7]], 12, metric="posendf")
    assert list(i[0, :11]) == [*range(200, 210), 300]  # eleven copies at distance 0, smallest id first
    assert np.all(d[0, :11] == d[0, 0]) and d[0, 0] < 1e-6
    assert i[2, 0] == 7
    # leave-one-out: a pose may not find itself
    d, i = knn(index, clean[:50], 3, metric="geodesic", exclude=np.arange(50))
    assert not np.any(i == np.arange(50)[:, None])
    want_d, want_i = knn_brute_force(clean, clean[:50], 3, metric="geodesic", exclude=np.arange(50))
    assert np.array_equal(i, want_i) and np.array_equal(d, want_d)


def test_exclude_minus_one_excludes_nothing_in_both_searches(clean: np.ndarray) -> None:
    """``exclude`` -1 means "none" for that query, in the exact search and in the brute-force reference alike (the
    reference once excluded the last clean pose)."""
    queries = clean[[0, 1, len(clean) - 1, 5]]
    exclude = np.array([-1, 1, -1, -1])
    index = PoseIndex.build(clean, tile=128)
    for metric in ("posendf", "geodesic"):
        d, i = knn(index, queries, 3, metric=metric, exclude=exclude)
        want_d, want_i = knn_brute_force(clean, queries, 3, metric=metric, exclude=exclude)
        assert np.array_equal(i, want_i) and np.array_equal(d, want_d)
        assert i[2, 0] == len(clean) - 1 and i[0, 0] == 0  # the last pose and the first found themselves
        assert 1 not in i[1]
        plain_d, plain_i = knn_brute_force(clean, queries[[0, 2, 3]], 3, metric=metric)
        assert np.array_equal(want_i[[0, 2, 3]], plain_i) and np.array_equal(want_d[[0, 2, 3]], plain_d)


def test_bad_arguments_are_named(clean: np.ndarray) -> None:
    index = PoseIndex.build(clean[:100])
    with pytest.raises(InvalidArgumentError, match="queries must be"):
        knn(index, clean[:3, :20], 2, metric="posendf")
    with pytest.raises(InvalidArgumentError, match="k must be"):
        knn(index, clean[:3], 0, metric="posendf")
    with pytest.raises(InvalidArgumentError, match="metric must be"):
        knn(index, clean[:3], 2, metric="l2")
    with pytest.raises(InvalidArgumentError, match="metric must be"):
        PoseIndex(clean[:100], metric="l2")
    with pytest.raises(InvalidArgumentError, match="exclude must be"):
        index.search(clean[:3], 2, exclude=np.array([0, 1]))
    with pytest.raises(InvalidArgumentError, match="hints holds ids outside"):
        index.search(clean[:3], 2, hints=np.array([0, 1, 100]))
    with pytest.raises(InvalidArgumentError, match="radius must be"):
        index.range_search(clean[:3], -1.0)
    bad = clean[:3].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InvalidArgumentError, match="non-finite"):
        knn(index, bad, 2, metric="posendf")
    with pytest.raises(InvalidArgumentError, match="clean poses must be"):
        PoseIndex.build(np.zeros((0, 21, 4), np.float32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_gives_the_same_result(clean: np.ndarray) -> None:
    queries, hints = _queries(clean, "nrdf", seed=9)
    want = knn(PoseIndex.build(clean), queries, 5, metric="posendf", hints=hints)
    got = knn(PoseIndex.build(clean, device="cuda"), queries, 5, metric="posendf", hints=hints)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_queries_in_blocks_give_the_same_result(clean: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    queries, hints = _queries(clean, "posendf", seed=13)
    index = PoseIndex.build(clean, tile=256)
    whole = knn(index, queries, 3, metric="geodesic", hints=hints, exclude=hints)
    monkeypatch.setattr(_scan, "QUERIES_AT_ONCE", 7)
    blocked = knn(index, queries, 3, metric="geodesic", hints=hints, exclude=hints)
    assert np.array_equal(whole[0], blocked[0]) and np.array_equal(whole[1], blocked[1])
    assert not np.any(whole[1] == hints[:, None])


def test_a_radius_search_returns_exactly_the_neighbours_within_it(clean: np.ndarray) -> None:
    queries, hints = _queries(clean, "nrdf", seed=21)
    index = PoseIndex.build(clean, tile=512)
    want_d, want_i = knn_brute_force(clean, queries, 8, metric="geodesic")
    radius = float(np.median(want_d[:, 3]))  # some rows hold more than k within it, some fewer
    got_d, got_i = knn(index, queries, 8, metric="geodesic", hints=hints, max_distance=radius)
    inside = want_d <= radius
    assert np.array_equal(got_i[inside], want_i[inside]) and np.array_equal(got_d[inside], want_d[inside])
    assert np.all(got_i[~inside] == -1) and np.all(np.isinf(got_d[~inside]))


def _bound_queries(clean: np.ndarray, scheme: str) -> np.ndarray:
    """Noisy queries, clean poses themselves and poses a hair from them (where a floor's rounding matters most)."""
    queries, _ = _queries(clean, scheme, seed=31)
    rng = np.random.default_rng(32)
    near = clean[rng.integers(0, len(clean), 20)].copy()
    near += rng.normal(0, 1e-5, near.shape).astype(np.float32)
    near /= np.linalg.norm(near, axis=-1, keepdims=True)
    queries = np.concatenate([queries, clean[[300, 205, 7, 120]], near]).astype(np.float32)
    return np.where(queries[..., 3:] < 0, -queries, queries)


def _tile_of(tiles: Tiles) -> np.ndarray:
    return np.arange(tiles.size) // tiles.tile


@pytest.mark.parametrize("scheme", ["posendf", "nrdf", "haar"])
def test_the_integer_products_bound_every_inner_product(clean: np.ndarray, scheme: str) -> None:
    queries = _bound_queries(clean, scheme)
    tiles = Tiles.build(clean, tile=256, products="int8")
    stage = tiles.first_stage
    assert isinstance(stage, Int8Products)
    in_order = tiles.poses[tiles.order].reshape(tiles.size, -1)  # the tiles hold the poses in their own order
    truth = queries.reshape(len(queries), -1).astype(np.float64) @ in_order.T.astype(np.float64)
    qi = stage.for_queries(queries)
    # the integer parts multiplied in int64 numpy (a reference independent of torch's integer kernels)
    D = stage.centre.shape[0]
    parts = stage.parts.numpy().astype(np.int64)
    h = 254 * (qi.hi.numpy().astype(np.int64) @ parts[:, :D].T) + qi.lo_hi.numpy().astype(np.int64) @ parts.T
    approx = qi.at_centre[:, None] + qi.to_score[:, None] * h
    error = qi.eta[:, _tile_of(tiles)]
    assert np.all(np.abs(truth - approx) <= error)
    # a bound that prunes, not a vacuous one: the low parts' product it leaves out reaches about 5e-4 of <q, x> on
    # these poses, and the bound stays within 10x of the largest error it covers (measured: 2.2e-3 at most)
    assert error.max() < 5e-3
    assert error.max() < 10 * np.abs(truth - approx).max()
    # the scan's candidates: exactly the poses whose H reaches the floor, whatever the floor
    rng = np.random.default_rng(4)
    floor_h = np.quantile(h[:, :256], rng.uniform(0.9, 1.0, len(h)), axis=1).diagonal().astype(np.int64)
    floor_h[::5] = np.iinfo(np.int32).max  # rows without any candidate
    hit_rows, passed = qi.candidates(slice(0, len(queries)), 0, 256, torch.from_numpy(floor_h).int())
    want = h[:, :256] >= floor_h[:, None]
    assert np.array_equal(hit_rows.numpy(), np.flatnonzero(want.any(1)))
    assert np.array_equal(passed.numpy(), want[want.any(1)])
    # the floors in integers: a pose is kept when its product can reach the floor once the error is allowed
    floor = truth[:, 3] - 1e-4
    ints = qi.floors(np.arange(len(queries)), floor, 0).numpy()  # pose 3 is in tile 0
    assert np.all(h[:, 3] >= ints)


@pytest.mark.parametrize("scheme", ["posendf", "nrdf", "haar"])
def test_the_centred_float32_products_bound_every_inner_product(clean: np.ndarray, scheme: str) -> None:
    queries = _bound_queries(clean, scheme)
    tiles = Tiles.build(clean, tile=256, products="float32")
    stage = tiles.first_stage
    assert isinstance(stage, CentredProducts)
    in_order = tiles.poses[tiles.order].reshape(tiles.size, -1)  # the tiles hold the poses in their own order
    truth = queries.reshape(len(queries), -1).astype(np.float64) @ in_order.T.astype(np.float64)
    centred = stage.for_queries(queries, _bounds.U32)
    Q, eta, at_centre = centred.rows, centred.eta, centred.at_centre
    approx = at_centre[:, None] + (Q @ stage.rows.T).numpy().astype(np.float64)
    bound = eta[:, _tile_of(tiles)]
    assert np.all(np.abs(truth - approx) <= bound)
    # about the mean, the bound is far below the uncentred one (gamma_4J |q| |x|, about 1e-4 for 21 joints)
    assert np.median(eta) < 2e-5


@pytest.mark.parametrize("metric", ["posendf", "geodesic"])
def test_the_joint_floor_never_exceeds_the_distance(clean: np.ndarray, metric: str) -> None:
    queries = _bound_queries(clean, "nrdf")
    poses = np.where(clean[..., 3:] < 0, -clean, clean).astype(np.float32)
    eps = max(
        float(np.abs(np.linalg.norm(poses.astype(np.float64), axis=-1) - 1).max()),
        float(np.abs(np.linalg.norm(queries.astype(np.float64), axis=-1) - 1).max()),
    )
    shrink = (1 - eps) ** 2 * (1 - 1e-15)
    u = _bounds.U32
    joint_error = 4 * u / (1 - 4 * u) * (1 + eps) ** 2 + 1e-30
    qj = torch.from_numpy(np.ascontiguousarray(queries.transpose(1, 0, 2)))
    xj = torch.from_numpy(np.ascontiguousarray(poses.transpose(1, 2, 0)))
    floor = _bounds.joint_floor(torch.bmm(qj, xj), metric, shrink, joint_error).numpy()
    exact = np.stack([pose_distance(q[None], poses, metric=metric) for q in queries])
    assert np.all(floor <= exact)
    # and it is tight enough to decide: within 10% of the distance (acos against 2 sin(t / 2), t <= pi / 2), less
    # what the margins take from each joint (rounding, the product's error, the norms; the square root of it for
    # the geodesic: the price of a proven floor)
    lost = _bounds.TERM_ROUNDING + 2 * (joint_error + 2 * eps)
    per_joint = np.sqrt(lost) if metric == "geodesic" else lost
    slack = exact - floor / (0.997 if metric == "geodesic" else 1.0)
    assert np.all(slack <= 21 * per_joint + 1e-5 * (1 + exact))  # and the sum's rounding, relative


def _search_setup(tiles: Tiles, queries: np.ndarray) -> tuple[float, float, float]:
    """``(eps, shrink, joint_error)`` as the scan makes them (its own function, not a copy of its formulas)."""
    query_error = float(np.abs(np.linalg.norm(queries.astype(np.float64), axis=-1) - 1).max())
    return _bounds.scan_tolerances(tiles.norm_error, query_error, _bounds.U32)


@pytest.mark.skipif(not _kernels.available(), reason="numba is not installed (the 'search' extra)")
@pytest.mark.parametrize("metric", ["posendf", "geodesic"])
@pytest.mark.parametrize("scheme", ["nrdf", "haar"])
def test_the_compiled_stage_keeps_every_pose_within_its_limit(
    clean: np.ndarray, metric: str, scheme: str
) -> None:
    """Each kernel row holds one candidate pose among 64 columns; its limit is the pair's own distance: the kernel
    must keep it, whatever it proves early from the partial sums and the bounds on the joints not yet added (here fed
    with the tightest inputs the search may give it: ``U`` itself, and balls of radius 0 around the candidate's own
    joints, so that the bounds on the rest are all but exact). With the limit 1% under the distance (0.3% for the
    series, plus the margins), it must drop it."""
    queries = _bound_queries(clean, scheme)
    tiles = Tiles.build(clean, tile=1024)
    assert tiles.blocks is not None
    rng = np.random.default_rng(7)
    n = 64
    cols = rng.integers(0, n, len(queries))
    start = 16 * rng.integers(0, (tiles.size - n) // 16, len(queries))  # any block-aligned window of poses
    poses = tiles.poses[tiles.order]
    x = poses[start + cols]
    exact = pose_distance(queries, x, metric=metric)
    q64 = queries.astype(np.float64)
    c = np.abs((q64 * x).sum(-1)) / (
        np.linalg.norm(q64, axis=-1) * np.linalg.norm(x.astype(np.float64), axis=-1)
    )
    U = (1 - np.minimum(c, 1)).sum(1)
    q_unit = q64 / np.linalg.norm(q64, axis=-1, keepdims=True)
    slack = tiles.norm_error + 1e-7
    eps, shrink, joint_error = _search_setup(tiles, queries)
    terms = _bounds.kernel_terms(metric, shrink, joint_error, eps)
    first = np.zeros((len(queries), n), np.float32)
    first[np.arange(len(queries)), cols] = 1.0
    hmax = first.reshape(len(first), -1, 16).max(2)
    u_low = np.nextafter(U.astype(np.float32), -np.inf)
    # what the margins take from each joint (as in the torch stage's test: the square root of it for the geodesic)
    lost = _bounds.TERM_ROUNDING + 2 * (joint_error + 2 * eps)
    per_joint = np.sqrt(lost) if metric == "geodesic" else lost
    dropped = tight = 0
    for i, s in enumerate(start):  # one window per row: a call each
        under = 0.99 * exact[i] - 21 * per_joint - 1e-5 * (1 + exact[i])
        x64 = x[i : i + 1].astype(np.float64)
        ball = (q_unit[i : i + 1], x64, np.zeros((1, 21)), np.zeros(1, np.int64), slack)
        for limit, keep in ((exact[i], True), (under, False)):
            if limit < 0:
                continue
            dropped += not keep
            _, found = _kernels.joint_stage(
                first[i : i + 1], hmax[i : i + 1], np.ones(1, np.float32),
                queries[i : i + 1], tiles.blocks[s // 16 : (s + n) // 16], _bounds.kernel_limits(np.array([limit])),
                (u_low[i : i + 1], np.zeros(1, np.float32)), ball, terms=terms, root=metric == "geodesic",
                order=tiles.joint_order, threads=1,
            )  # fmt: skip
            assert list(found) == ([cols[i]] if keep else []), (i, limit, exact[i])
        # the ball of radius 0 bounds the joints after the first check all but exactly (so the kernel decided
        # there): within the series' 0.3% and the slack
        rest = np.empty((1, 22, 4), np.float32)
        _kernels._rest_bounds(0, q_unit[i : i + 1], *ball[1:], tiles.joint_order, metric == "geodesic", rest)
        after = tiles.joint_order[_kernels._CHECK_EVERY :]
        truth = (np.arccos(c[i, after]) if metric == "geodesic" else 1 - np.minimum(c[i, after], 1)).sum()
        assert rest[0, _kernels._CHECK_EVERY, 2] <= truth * (1 + 1e-7) + 1e-12
        tight += bool(rest[0, _kernels._CHECK_EVERY, 2] >= 0.99 * truth - 21 * per_joint)
    assert dropped > len(queries) // 3  # the tightness was checked on many
    assert tight > 0.9 * len(queries)


def _rest_bounds_over_tiles(tiles: Tiles, queries: np.ndarray, metric: str) -> tuple[np.ndarray, ...]:
    """The kernel's bounds on the joints left (:func:`amasskit.prior.poses._kernels._rest_bounds`) of every query over
    every tile, ``(M, T, J + 1, 4)``, and per pair the true ``u_j`` and terms in the kernel's joint order, ``(M, N,
    J)``."""
    q64 = queries.astype(np.float64)
    q_unit = q64 / np.linalg.norm(q64, axis=-1, keepdims=True)
    poses = tiles.poses[tiles.order].astype(np.float64)
    dot = np.abs(np.einsum("mjc,njc->mnj", q64, poses))
    c = np.minimum(dot / (np.linalg.norm(q64, axis=-1)[:, None] * np.linalg.norm(poses, axis=-1)[None]), 1.0)
    u = (1 - c)[:, :, tiles.joint_order]
    terms = np.arccos(c)[:, :, tiles.joint_order] if metric == "geodesic" else u
    M, T, J = len(queries), len(tiles.centres), tiles.joints
    rest = np.empty((M, T, J + 1, 4), np.float32)
    one = np.empty((M, J + 1, 4), np.float32)
    compute = getattr(_kernels, "_rest_bounds_inline", _kernels._rest_bounds)  # compiled where numba is
    for t in range(T):
        of = np.full(M, t, np.int64)
        for i in range(M):
            compute(i, q_unit, tiles.centres, tiles.radii, of, tiles.norm_error + 1e-7, tiles.joint_order,
                    metric == "geodesic", one)  # fmt: skip
        rest[:, t] = one
    return rest, u, terms


@pytest.mark.skipif(not _kernels.available(), reason="numba is not installed (the 'search' extra)")
@pytest.mark.parametrize("metric", ["posendf", "geodesic"])
def test_the_compiled_stage_bounds_the_joints_left_over_every_tile(clean: np.ndarray, metric: str) -> None:
    """The kernel's bound on the joints not yet added, from the tile's balls (``max(r left, Lg + s (left - Lu)^+)``
    after each check, ``left`` the true sum of their ``u_j``), never exceeds their true sum of terms, on every pose
    of every tile (w near 0, duplicates, Haar queries; tiles of 256 and of 16 alike poses, whose balls are small);
    and for the geodesic, the balls add to the bound from ``r`` alone: by more than 10% on many pairs at the first
    check (for posendf ``r left`` is exact where ``left`` is)."""
    queries = np.concatenate([_bound_queries(clean, "nrdf"), _bound_queries(clean, "haar")[::4]])
    J = 21
    for tile in (256, 16):
        tiles = Tiles.build(clean, tile=tile)
        rest, u, terms = _rest_bounds_over_tiles(tiles, queries if tile == 256 else queries[:24], metric)
        of = _tile_of(tiles)
        for a in range(_kernels._CHECK_EVERY, J + 1, _kernels._CHECK_EVERY):
            r, s, lg, lu = (rest[:, of, a, k].astype(np.float64) for k in range(4))  # (M, N)
            left = u[..., a:].sum(2)
            truth = terms[..., a:].sum(2)
            bound = np.maximum(r * left, lg + s * np.maximum(left - lu, 0))
            assert np.all(bound <= truth * (1 + 1e-7) + 1e-12), (tile, a)
            # the balls add to r left where it matters most
            if a == _kernels._CHECK_EVERY and metric == "geodesic":
                assert np.mean(bound > 1.1 * r * left) > 0.3, tile


def test_the_concave_bound_holds_over_every_tile(clean: np.ndarray) -> None:
    """``geodesic >= rho (J - S)`` for every pose of every tile, ``rho`` from the tile's cap on each joint's term;
    and it is tighter than the bound from ``U`` alone where the distance is spread over the joints."""
    for scheme in ("nrdf", "haar"):
        queries = _bound_queries(clean, scheme)
        tiles = Tiles.build(clean, tile=256)
        rho = _bounds.spread_factors(tiles, queries)  # (M, T)
        poses = tiles.poses[tiles.order].astype(np.float64)
        q = queries.astype(np.float64)
        dot = np.abs(np.einsum("mjc,njc->mnj", q, poses))
        c = np.minimum(
            dot / (np.linalg.norm(q, axis=-1)[:, None] * np.linalg.norm(poses, axis=-1)[None]), 1.0
        )
        U = (1 - c).sum(2)
        exact = np.arccos(c).sum(2)
        bound = rho[:, _tile_of(tiles)] * U
        assert np.all(bound <= exact * (1 + 1e-12) + 1e-12)
        if scheme == "nrdf":  # it prunes: fewer poses pass it and the chord bound than the chord bound alone
            tau = np.sort(exact, 1)[:, 4:5]
            chord = np.sqrt(2 * U) <= tau
            assert (chord & (bound <= tau)).sum() < 0.8 * chord.sum()


@pytest.mark.parametrize("products", ["int8", "float32"])
def test_the_compiled_stage_lower_bound_on_u_holds(clean: np.ndarray, products: str) -> None:
    """``ulow0 - uslope h``, evaluated in float32 as the kernel does, never exceeds ``U = J - sum_j c_j`` of a pose
    whose first-stage value is ``h``."""
    queries = _bound_queries(clean, "nrdf")
    tiles = Tiles.build(clean, tile=256, products=products, joint_stage="torch")
    _, shrink, _ = _search_setup(tiles, queries)
    M, J = len(queries), 21
    poses = tiles.poses[tiles.order]
    q64, x64 = queries.astype(np.float64), poses.astype(np.float64)
    dot = np.abs(np.einsum("mjc,njc->mnj", q64, x64))
    c = np.minimum(dot / (np.linalg.norm(q64, axis=-1)[:, None] * np.linalg.norm(x64, axis=-1)[None]), 1.0)
    U = J - c.sum(2)
    if products == "int8":
        stage = tiles.first_stage
        assert isinstance(stage, Int8Products)
        qi = stage.for_queries(queries)
        eta = qi.eta
        D = stage.centre.shape[0]
        parts = stage.parts.numpy().astype(np.int64)
        h = (
            254 * (qi.hi.numpy().astype(np.int64) @ parts[:, :D].T)
            + qi.lo_hi.numpy().astype(np.int64) @ parts.T
        )
        at_centre, to_score, h32 = qi.at_centre, qi.to_score, h.astype(np.float32)
    else:
        centred = tiles.first_stage
        assert isinstance(centred, CentredProducts)
        cq = centred.for_queries(queries, _bounds.U32)
        eta, at_centre = cq.eta, cq.at_centre
        h32 = (cq.rows @ centred.rows.T).numpy()
        to_score = np.ones(M)
    q_norm = np.sqrt((queries.reshape(M, -1).astype(np.float64) ** 2).sum(1))
    # the scan's correction bounds S - L over each tile (the double cover: poses with w near 0); here its exact
    # largest value, so that only the arithmetic of U_low is under test
    p = np.einsum("mjc,njc->mnj", q64, x64)
    gap = (np.abs(p) - p).sum(2)
    T = len(tiles.centres)
    correction = np.stack([gap[:, t * 256 : (t + 1) * 256].max(1) for t in range(T)], 1) * (1 + 1e-12) + 1e-12
    assert correction.max() > 0.1  # the w-near-0 poses are in the set
    for t in range(len(tiles.centres)):
        cols = slice(t * 256, (t + 1) * 256)
        u0, slope = _bounds.kernel_ulow(tiles, np.arange(M), t, at_centre, to_score, q_norm, eta, correction,
                                      shrink, J)  # fmt: skip
        low = u0[:, None] - slope[:, None] * h32[:, cols]  # float32, as in the kernel
        assert low.dtype == np.float32
        assert np.all(low.astype(np.float64) <= U[:, cols])
        # and a useful bound where the correction is small (most tiles): within the first stage's own error (the
        # products' bound, twice: above and below) and 1e-4 for the float32 evaluation
        small = correction[:, t] < 1e-6
        assert np.all((U[:, cols] - low - 2 * eta[:, t, None])[small] <= 1e-4)


def test_the_per_joint_stage_choice(clean: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    queries, hints = _queries(clean, "nrdf", seed=43)
    want = knn_brute_force(clean[:5997], queries, 3, metric="geodesic")
    # a last tile whose width is not a multiple of 16 (the compiled stage pads it), and the torch stage
    for stage in ("auto", "torch"):
        index = PoseIndex.build(clean[:5997], joint_stage=stage)
        assert (index.joint_stage == "numba") == (stage == "auto" and _kernels.available())
        got = knn(index, queries, 3, metric="geodesic", hints=hints)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    with pytest.raises(InvalidArgumentError, match="joint_stage must be"):
        PoseIndex.build(clean[:10], joint_stage="cuda")
    with pytest.raises(InvalidArgumentError, match="multiple of 16"):
        PoseIndex.build(clean[:100], tile=40, joint_stage="numba")
    assert PoseIndex.build(clean[:100], tile=40).joint_stage == "torch"  # auto falls back to torch
    monkeypatch.setattr(_kernels, "available", lambda: False)
    with pytest.raises(InvalidArgumentError, match="needs numba"):
        PoseIndex.build(clean[:100], joint_stage="numba")
    assert PoseIndex.build(clean[:100]).joint_stage == "torch"


def test_integer_and_float_products_give_the_same_neighbours(clean: np.ndarray) -> None:
    queries, hints = _queries(clean, "posendf", seed=41)
    want = knn(PoseIndex.build(clean, products="float32"), queries, 4, metric="posendf", hints=hints)
    got = knn(PoseIndex.build(clean, products="int8"), queries, 4, metric="posendf", hints=hints)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    with pytest.raises(InvalidArgumentError, match="products must be"):
        PoseIndex.build(clean[:10], products="int4")


def test_tiles_hold_poses_that_are_alike_and_ids_stay_the_callers(clean: np.ndarray) -> None:
    index = PoseIndex.build(clean, tile=256)
    tiles = index._tiles  # the search's own prepared tiles
    assert np.array_equal(np.sort(tiles.order), np.arange(len(clean)))  # a permutation
    x = tiles.poses[tiles.order].astype(np.float64).reshape(len(clean), -1)
    centres = tiles.centres.reshape(len(tiles.centres), -1)
    for t in range(len(centres)):  # every tile's ball holds its poses
        block = x[t * 256 : (t + 1) * 256]
        assert np.sqrt(((block - centres[t]) ** 2).sum(1)).max() <= tiles.ball_radii[t]
    # the tree's tiles are tighter than runs of the set's own order
    runs = clean[: 256 * 23].astype(np.float64).reshape(23, 256, -1)
    plain = np.sqrt(((runs - runs.mean(1, keepdims=True)) ** 2).sum(2)).max(1)
    assert np.median(tiles.ball_radii) < 0.7 * np.median(plain)
    # a query that is a clean pose finds it under its own id
    d, i = knn(index, clean[[5, 4000]], 1, metric="posendf")
    assert list(i[:, 0]) == [5, 4000] and np.all(d < 1e-6)


@pytest.mark.skipif(not _kernels.available(), reason="numba is not installed (the 'search' extra)")
def test_the_kernels_compile_where_numba_cannot_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where numba finds no folder to cache machine code in, it raises at decoration: the kernels are then compiled
    in each process instead of failing the import."""
    real = _kernels._NUMBA
    options_seen: list[dict[str, object]] = []

    class NoCacheNumba:
        def njit(self, **options: object) -> object:
            options_seen.append(options)
            if options.get("cache"):
                raise RuntimeError(
                    "cannot cache function '_gather_loop': no locator available for file 'x.py'"
                )
            return real.njit(**options)

    monkeypatch.setattr(_kernels, "_NUMBA", NoCacheNumba())
    gather = _kernels._compile(_kernels._gather_loop, nogil=True)
    rows, cols = gather(np.array([[3, 5], [7, 0]], np.int32), np.array([2, 1]))
    assert list(rows) == [0, 0, 1] and list(cols) == [3, 5, 7]
    assert options_seen == [{"cache": True, "nogil": True}, {"nogil": True}]


@pytest.mark.parametrize("metric", ["posendf", "geodesic"])
def test_a_search_that_starts_without_k_neighbours_is_exact(clean: np.ndarray, metric: str) -> None:
    """Tiles of 16, k = 60 and hints with a window of 8: the start gives at most 17 + 16 poses, so the scan begins with
    no k-th distance (an infinite limit, -inf floors for the float32 products): the compiled stage must still keep
    every pose it should (it is compiled on the promise of finite inputs: the limits and floors it gets are
    clamped)."""
    queries, hints = _queries(clean, "haar", seed=51)
    subset, queries, hints = clean[:700], queries[:30], np.minimum(hints[:30], 699)
    want = knn_brute_force(subset, queries, 60, metric=metric)
    seen: list[float] = []
    real = _kernels.joint_stage

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(float(np.max(args[5])))  # type: ignore[arg-type]  # the limits
        return real(*args, **kwargs)  # type: ignore[arg-type]

    for products in ("int8", "float32"):
        index = PoseIndex.build(subset, tile=16, products=products)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_kernels, "joint_stage", spy)
            got = knn(index, queries, 60, metric=metric, hints=hints, window=8)
        assert np.array_equal(got[1], want[1]) and np.array_equal(got[0], want[0])
    if index.joint_stage == "numba":
        assert max(seen) >= 1e20  # the scan did start without a k-th distance


def test_the_index_is_shaped_as_faiss_users_expect(clean: np.ndarray) -> None:
    """``PoseIndex(clean, metric=...)`` owns its metric: ``.search(queries, k) -> (distances, ids)`` over any leading
    shape, -1 at inf where fewer than ``k`` exist; ``.range_search(queries, radius) -> (lims, distances, ids)`` holds
    exactly the brute-force neighbours within the radius, nearest first; ``with_metric`` shares the prepared poses."""
    subset = clean[:800]
    queries, hints = _queries(subset, "nrdf", seed=61)
    queries, hints = queries[:40], np.minimum(hints[:40], 799)
    index = PoseIndex(subset, metric="geodesic", tile=128)
    assert index.ntotal == 800 and index.metric == "geodesic" and "800 poses" in repr(index)
    want_d, want_i = knn_brute_force(subset, queries, 6, metric="geodesic")
    got_d, got_i = index.search(queries.reshape(4, 10, 21, 4), 6, hints=hints.reshape(4, 10))
    assert got_d.shape == got_i.shape == (4, 10, 6)
    assert np.array_equal(got_i.reshape(40, 6), want_i) and np.array_equal(got_d.reshape(40, 6), want_d)
    other = index.with_metric("posendf")
    assert other._tiles is index._tiles and other.metric == "posendf" and index.metric == "geodesic"
    want_p = knn_brute_force(subset, queries, 3, metric="posendf")
    assert all(np.array_equal(g, w) for g, w in zip(other.search(queries, 3), want_p, strict=True))
    small = PoseIndex(subset[:5], metric="geodesic")  # k past the set's size: the rest is -1 at inf
    d, i = small.search(queries[:2], 8)
    assert np.array_equal(i[:, :5], knn_brute_force(subset[:5], queries[:2], 5, metric="geodesic")[1])
    assert np.all(i[:, 5:] == -1) and np.all(np.isinf(d[:, 5:]))
    d, i = small.search(queries[:2], 8, exclude=np.array([0, -1]))
    assert np.all(i[0, 4:] == -1) and 0 not in i[0] and i[1, 4] >= 0
    # every pose within the radius, however many (some rows hold more than the first try's 16, some none)
    all_d, all_i = knn_brute_force(subset, queries, 800, metric="geodesic")
    radius = float(np.quantile(all_d[:, 20], 0.5))
    lims, dist, ids = index.range_search(queries, radius)
    assert lims.shape == (41,) and lims[0] == 0 and lims[-1] == len(ids) == len(dist)
    counts = np.diff(lims)
    assert counts.max() > 16 and counts.min() < 16
    for row in range(40):
        inside = all_d[row] <= radius
        assert np.array_equal(ids[lims[row] : lims[row + 1]], all_i[row][inside])
        assert np.array_equal(dist[lims[row] : lims[row + 1]], all_d[row][inside])
    lims0, dist0, ids0 = index.range_search(queries[:3], 0.0)  # noisy queries: none at distance 0
    assert np.array_equal(lims0, [0, 0, 0, 0]) and len(ids0) == len(dist0) == 0


def test_the_knn_function_of_before_still_answers_and_says_it_is_deprecated(clean: np.ndarray) -> None:
    from amasskit.prior import knn as old_knn

    index = PoseIndex.build(clean[:300], tile=64)
    queries = clean[[3, 7, 250]]
    with pytest.warns(DeprecationWarning, match="PoseIndex"):
        d, i = old_knn(index, queries, 4, metric="posendf")
    want = knn_brute_force(clean[:300], queries, 4, metric="posendf")
    assert np.array_equal(i, want[1]) and np.array_equal(d, want[0])
    with (
        pytest.warns(DeprecationWarning, match="deprecated"),
        pytest.raises(InvalidArgumentError, match="k must be in"),
    ):
        old_knn(index, queries, 301, metric="posendf")
