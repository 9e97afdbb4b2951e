"""Reading AMASS files: amasskit's header-only and full readers against plain numpy and the physical limit.

What existing tools do to learn a file's length, rate and gender is ``np.load`` and touch every array. The catalog
(issue "Ingest") scans 14,000 files through :func:`amasskit.read_header`, which reads a few small scalars and the
``.npy`` headers only. The physical limit for "learn what an npz holds" is opening the file and parsing its zip
central directory, which every approach must do.

Run (after ``./scripts/test`` or ``./scripts/demo`` made ``.venv``)::

    .venv/bin/python benchmarks/read.py [--files 200] [--repeat 3]

It builds a synthetic SMPL+H tree with the release's real length distribution (a stated number of files), then
times each reader over every motion file, warm page cache, one process, and prints files/s and ratios.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from _common import load_every_array

import amasskit
from amasskit.synth import synth_tree


def load_every_array_count(path: Path) -> int:
    """np.load and materialise every array (what loaders do today)."""
    load_every_array([path])
    return 0


def zip_directory(path: Path) -> int:
    """The floor: open the file and parse the zip central directory."""
    with zipfile.ZipFile(path) as zf:
        return len(zf.infolist())


def amasskit_header(path: Path) -> int:
    return amasskit.read_header(path).num_frames


def amasskit_read(path: Path) -> int:
    return amasskit.read(path).num_frames


def bench(fn: Callable[[Path], int], paths: list[Path], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for path in paths:
            fn(path)
        best = min(best, time.perf_counter() - start)
    return len(paths) / best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=200, help="motion files in the synthetic tree")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many passes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        summary = synth_tree(Path(tmp) / "tree", files=args.files, seed=args.seed, workers=2)
        paths = sorted(summary.root.rglob("*_poses.npz"))
        size = sum(p.stat().st_size for p in paths)
        print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
        print(
            f"tree: {len(paths)} files, {summary.frames:,} frames, {size / 2**20:.0f} MiB (real length distribution)"
        )
        results = {
            "np.load, every array (existing tools)": bench(load_every_array_count, paths, args.repeat),
            "amasskit.read (validated Sequence)": bench(amasskit_read, paths, args.repeat),
            "amasskit.read_header": bench(amasskit_header, paths, args.repeat),
            "zip central directory (floor)": bench(zip_directory, paths, args.repeat),
        }
    baseline = results["np.load, every array (existing tools)"]
    floor = results["zip central directory (floor)"]
    print(f"{'reader':40s} {'files/s':>10s} {'vs np.load':>11s} {'of floor':>9s} {'14,096 files':>13s}")
    for name, rate in results.items():
        print(f"{name:40s} {rate:10,.0f} {rate / baseline:10.1f}x {rate / floor:8.0%} {14096 / rate:11.2f} s")


if __name__ == "__main__":
    main()
