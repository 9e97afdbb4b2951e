"""Exact nearest clean poses for distance-field training data: amasskit beside Pose-NDF's procedure, in one run.

On a synthetic clean set (``amasskit.synth.synth_pose_set``: VPoser's sampling of synthetic motion, 21 body joints)
and noisy queries made from its poses as the training-data job makes them (hints: each query's source pose):

* amasskit: :meth:`amasskit.prior.PoseIndex.search` (exact: equal to brute force, skipping only on proven bounds), per metric;
  also with float32 first-stage products, and with the per-joint stage in torch instead of numba;
* Pose-NDF's procedure: faiss-cpu ``IndexFlatL2`` on the 84-d sign-flipped quaternions, 500 candidates, re-ranked
  exactly by the metric, the 5 nearest kept (not exact: its recall@k is measured against brute force);
* plain brute force in numpy (every distance, :func:`amasskit.prior.knn_brute_force`), on a subset of the queries;
* the roofline: the float32 matrix product of the queries and the clean set (the arithmetic a scan must do at
  least once), timed on its own.

Usage: ``.venv/bin/python benchmarks/prior_data.py [--clean 500000] [--queries 2000] [--repeats 3] [--cache FILE]``; faiss from
PyPI beside the project: ``pip install --target DIR faiss-cpu --no-deps`` and ``PYTHONPATH=DIR``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from amasskit.prior import NoiseConfig, PoseIndex, knn_brute_force, perturb, pose_distance
from amasskit.synth import synth_pose_set

POSENDF_CLEAN = 4_000_000
"""Pose-NDF's clean set (about 4.0 M poses), for the extrapolation."""


def clean_set(count: int, cache: Path | None) -> np.ndarray:
    if cache is not None and cache.is_file():
        poses = np.load(cache)
        if len(poses) == count:
            return poses
    poses = synth_pose_set(count, seed=0)[0]
    if cache is not None:
        np.save(cache, poses)
    return poses


def faiss_procedure(
    clean: np.ndarray, queries: np.ndarray, k: int, metric: str
) -> tuple[float, np.ndarray] | str:
    """Pose-NDF's search: L2 on the flattened quaternions (w >= 0), 500 candidates, exact re-rank; (seconds, ids)."""
    try:
        import faiss  # type: ignore[import-not-found]
    except ImportError:
        return "faiss-cpu not importable (pip install --target DIR faiss-cpu --no-deps; PYTHONPATH=DIR)"
    faiss.omp_set_num_threads(torch.get_num_threads())
    flat = np.ascontiguousarray(clean.reshape(len(clean), -1))
    index = faiss.IndexFlatL2(flat.shape[1])
    index.add(flat)
    start = time.perf_counter()
    _, cand = index.search(np.ascontiguousarray(queries.reshape(len(queries), -1)), 500)
    d = pose_distance(queries[:, None], clean[cand], metric=metric)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    ids = np.take_along_axis(cand, order, 1)
    return time.perf_counter() - start, ids


def roofline(clean: np.ndarray, queries: np.ndarray) -> float:
    """Seconds of the float32 products ``queries @ clean.T`` alone, in the cache-sized blocks a scan uses (256
    queries x 1,024 poses: the fastest this machine multiplies float32 matrices of these shapes)."""
    Q = torch.from_numpy(np.ascontiguousarray(queries.reshape(len(queries), -1)))
    X = torch.from_numpy(np.ascontiguousarray(clean.reshape(len(clean), -1)))
    start = time.perf_counter()
    for s in range(0, len(X), 1024):
        block = X[s : s + 1024]
        for a in range(0, len(Q), 256):
            _ = Q[a : a + 256] @ block.T
    return time.perf_counter() - start


def int8_roofline(clean: np.ndarray, queries: np.ndarray) -> float:
    """Seconds of the integer products amasskit's CPU scan makes (two int8 parts: 84 + 168 terms a pair, int32
    sums; ``torch._int_mm``) alone, in its blocks (1,024 queries x 1,024 poses)."""
    D = clean.shape[1] * 4
    rng = np.random.default_rng(0)
    parts = torch.from_numpy(rng.integers(-127, 128, (len(clean), 2 * D), dtype=np.int8))
    hi = torch.from_numpy(rng.integers(-127, 128, (len(queries), D), dtype=np.int8))
    lo_hi = torch.from_numpy(rng.integers(-127, 128, (len(queries), 2 * D), dtype=np.int8))
    start = time.perf_counter()
    for s in range(0, len(parts), 1024):
        block = parts[s : s + 1024]
        for a in range(0, len(hi), 1024):
            _ = torch._int_mm(hi[a : a + 1024], block[:, :D].T)
            _ = torch._int_mm(lo_hi[a : a + 1024], block.T)
    return time.perf_counter() - start


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(ids, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clean", type=int, default=500_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--brute", type=int, default=100, help="queries for numpy brute force (slow)")
    parser.add_argument("--samples", type=int, default=10, help="noisy samples per clean pose (the job's)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument(
        "--cache", type=Path, default=None, help="an .npy file to keep the synthetic clean set in"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each method (the best is kept)")
    parser.add_argument(
        "--cases", default="posendf/posendf,nrdf/geodesic,mixture/posendf,mixture/geodesic",
        help="noise/metric pairs to run, comma-separated",
    )  # fmt: skip
    args = parser.parse_args()
    clean = clean_set(args.clean, args.cache)
    rng = np.random.default_rng(1)
    sources = np.sort(rng.choice(len(clean), args.queries // args.samples, replace=False))
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"device {args.device}; {len(clean):,} clean poses, {len(sources) * args.samples:,} queries "
          f"({args.samples} per source pose), k = {args.k}")  # fmt: skip
    start = time.perf_counter()
    index = PoseIndex.build(clean, device=args.device)
    print(f"index built in {time.perf_counter() - start:.2f} s (products: {index.products})")
    float_index = (
        PoseIndex.build(clean, device=args.device, products="float32") if index.products == "int8" else None
    )
    # the per-joint stage in torch, where the compiled one (numba) ran above
    torch_index = (
        PoseIndex.build(clean, device=args.device, joint_stage="torch")
        if index.joint_stage == "numba"
        else None
    )
    print(f"per-joint stage: {'compiled (numba)' if index.joint_stage == 'numba' else 'torch'}")
    zeros = np.zeros((len(sources) * args.samples, 21, 4), np.float32)
    roof, roof_int8 = roofline(clean, zeros), int8_roofline(clean, zeros)
    print(f"{'case':44s} {'method':34s} {'queries/s':>10s} {'recall@k':>9s} {'vs faiss':>9s}")
    for noise, metric in (case.split("/") for case in args.cases.split(",")):
        noisy, _, _ = perturb(clean[sources], samples=args.samples, noise=NoiseConfig(noise), seed=0)
        queries = noisy.reshape(-1, 21, 4)
        hints = np.repeat(sources, args.samples)
        sub = np.arange(0, len(queries), max(1, len(queries) // args.brute))[: args.brute]
        start = time.perf_counter()
        truth_d, truth = knn_brute_force(clean, queries[sub], args.k, metric=metric)
        brute = (time.perf_counter() - start) / len(sub) * len(queries)
        # the methods in turn, repeated: the best of each (this machine's speed drifts between runs)
        ours = ours_float = ours_torch = faiss_s = float("inf")
        faiss_ids: np.ndarray | None = None
        faiss_note = ""
        for _ in range(args.repeats):
            start = time.perf_counter()
            dist, ids = index.with_metric(metric).search(queries, args.k, hints=hints)
            ours = min(ours, time.perf_counter() - start)
            assert np.array_equal(ids[sub], truth) and np.array_equal(dist[sub], truth_d), "not exact"
            if float_index is not None:
                start = time.perf_counter()
                dist, ids = float_index.with_metric(metric).search(queries, args.k, hints=hints)
                ours_float = min(ours_float, time.perf_counter() - start)
                assert np.array_equal(ids[sub], truth) and np.array_equal(dist[sub], truth_d), "not exact"
            if torch_index is not None:
                start = time.perf_counter()
                dist, ids = torch_index.with_metric(metric).search(queries, args.k, hints=hints)
                ours_torch = min(ours_torch, time.perf_counter() - start)
                assert np.array_equal(ids[sub], truth) and np.array_equal(dist[sub], truth_d), "not exact"
            faiss_result = faiss_procedure(clean, queries, args.k, metric)
            if isinstance(faiss_result, str):
                faiss_note = faiss_result
            else:
                faiss_s, faiss_ids = min(faiss_s, faiss_result[0]), faiss_result[1]
        case = f"{noise} noise, {metric} distance"
        q = len(queries)
        rows = [("amasskit (exact)", ours, 1.0)]
        if float_index is not None:
            rows.append(("amasskit, float32 products (exact)", ours_float, 1.0))
        if torch_index is not None:
            rows.append(("amasskit, torch per-joint stage", ours_torch, 1.0))
        rows.append(("numpy brute force (exact)", brute, 1.0))
        if faiss_ids is None:
            print(faiss_note)
            faiss_s = float("nan")
        else:
            rows.append(("Pose-NDF's faiss procedure", faiss_s, recall(faiss_ids[sub], truth)))
        rows.append(("float32 matmul roofline (one scan)", roof, float("nan")))
        rows.append(("int8 products roofline (one scan)", roof_int8, float("nan")))
        for name, seconds, r in rows:
            print(f"{case:44s} {name:34s} {q / seconds:10.0f} {r:9.3f} {faiss_s / seconds:8.2f}x")
        hours = POSENDF_CLEAN / len(clean) * POSENDF_CLEAN * args.samples / (q / ours) / 3600
        print(f"{case:44s} extrapolated to 4.0 M clean poses x {args.samples} samples at this rate: {hours:,.1f} h "
              f"on this machine (the scan grows with the clean set)")  # fmt: skip


if __name__ == "__main__":
    main()
