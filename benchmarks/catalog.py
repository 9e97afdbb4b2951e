"""Cataloguing a tree: amasskit's header scan (cold and incremental) against np.load of every file, in one run.

Two synthetic SMPL+H trees:

* a fraction of the release with its real length distribution (``--fraction``), where the first scan is compared
  with reading every file with ``np.load`` (what the existing tools do to learn lengths and rates);
* the release's full file count (14,096) with short sequences, for the incremental rescan target: with nothing
  changed, under 2 seconds.

Run::

    .venv/bin/python benchmarks/catalog.py [--fraction 0.05] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from _common import load_every_array, settle

from amasskit.catalog import scan
from amasskit.synth import synth_tree

FULL_FILES = 14_096


def best_of(repeat: int, fn: object, *args: object, fresh_db: Path | None = None, **kwargs: object) -> float:
    """Best wall time of ``repeat`` runs (a fresh database each run when ``fresh_db`` is given)."""
    best = float("inf")
    for _ in range(repeat):
        if fresh_db is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{fresh_db}{suffix}").unlink(missing_ok=True)
        start = time.perf_counter()
        fn(*args, **kwargs)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fraction", type=float, default=0.05, help="of the release's 14,096 files, real lengths"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-full", action="store_true", help="skip the full-count tree")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        files = max(19, round(FULL_FILES * args.fraction))
        real = synth_tree(tmp / "real", files=files, workers=args.jobs)
        paths = sorted(real.root.rglob("*_poses.npz"))
        size = sum(p.stat().st_size for p in paths)
        print(f"tree 1: {len(paths)} files ({args.fraction:.0%} of the release), {real.frames:,} frames, "
              f"{size / 2**30:.2f} GiB, warm page cache")  # fmt: skip
        settle(real.root)
        t_load = best_of(3, load_every_array, paths)
        t_cold1 = best_of(3, scan, real.root, tmp / "real1.sqlite", workers=1, fresh_db=tmp / "real1.sqlite")
        t_cold = best_of(
            3, scan, real.root, tmp / "real.sqlite", workers=args.jobs, fresh_db=tmp / "real.sqlite"
        )
        t_warm = best_of(3, scan, real.root, tmp / "real.sqlite", workers=args.jobs)
        print(f"{'':46s} {'seconds':>8s} {'files/s':>9s} {'vs np.load':>11s}")
        for name, t in [
            ("np.load every array, 1 process (existing tools)", t_load),
            ("amasskit catalog, first scan, 1 process", t_cold1),
            (f"amasskit catalog, first scan, {args.jobs} processes", t_cold),
            ("amasskit catalog, rescan, nothing changed", t_warm),
        ]:
            print(f"{name:46s} {t:8.2f} {len(paths) / t:9,.0f} {t_load / t:10.1f}x")
        if args.skip_full:
            return
        full = synth_tree(tmp / "full", files=FULL_FILES, lengths="short", workers=args.jobs)
        print(f"tree 2: {full.files:,} files (the release's count), short sequences")
        settle(full.root)
        t_cold = best_of(
            3, scan, full.root, tmp / "full.sqlite", workers=args.jobs, fresh_db=tmp / "full.sqlite"
        )
        t_warm = best_of(3, scan, full.root, tmp / "full.sqlite", workers=args.jobs)
        changed = sorted(full.root.rglob("*_poses.npz"))[::100]
        for path in changed:
            os.utime(path, ns=(time.time_ns(), time.time_ns()))
        t_some = best_of(1, scan, full.root, tmp / "full.sqlite", workers=args.jobs)
        print(
            f"  first scan, {args.jobs} processes: {t_cold:.2f} s ({full.files / t_cold:,.0f} files/s), best of 3"
        )
        print(f"  rescan, nothing changed:    {t_warm:.2f} s (target: under 2 s)")
        print(f"  rescan, {len(changed)} files touched: {t_some:.2f} s")


if __name__ == "__main__":
    main()
