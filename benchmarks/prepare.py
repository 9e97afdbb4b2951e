"""prepare: amasskit's pipeline against the floor for reading and a per-frame Python loop, in one run.

* floor: load every npz once with ``np.load`` (every array), one process: nothing can prepare faster than it reads;
* per-frame loop: what the AMASS tools' stage I/II do: ``np.load``, stride to the target rate, then a Python loop
  over frames and joints turning axis-angles into rotation matrices (``pose_matrot``);
* amasskit ``prepare``: resample by time to 30 fps (slerp), keep the middle 80%, store as rotation matrices
  (comparable work), into a memory-mappable store; 1 and 2 processes.

Frames per second count input frames. Run::

    .venv/bin/python benchmarks/prepare.py [--fraction 0.02]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import load_every_array, settle

from amasskit.catalog import scan
from amasskit.prepare import PrepareConfig, prepare
from amasskit.synth import synth_tree

FULL_FILES = 14_096
FULL_FRAMES = 19_775_902


def rodrigues(r: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(r))
    if angle < 1e-12:
        return np.eye(3)
    k = r / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def per_frame_loop(paths: list[Path], target_fps: float = 30.0) -> None:
    for path in paths:
        with np.load(path, allow_pickle=False) as data:
            poses = data["poses"]
            fps = float(data["mocap_framerate"])
        step = max(1, int(fps / target_fps))
        T = len(poses)
        kept = poses[int(T * 0.1) : int(T * 0.9) : step]
        out = np.empty((len(kept), 52, 3, 3))
        for f in range(len(kept)):
            for j in range(52):
                out[f, j] = rodrigues(kept[f, 3 * j : 3 * j + 3])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fraction", type=float, default=0.02, help="of the release's files, real length distribution"
    )
    parser.add_argument("--loop-files", type=int, default=20, help="files for the (slow) per-frame loop")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tree = synth_tree(tmp / "tree", files=max(19, round(FULL_FILES * args.fraction)), workers=2)
        scan(tree.root, workers=1)
        paths = sorted(tree.root.rglob("*_poses.npz"))
        frames = tree.frames
        settle(tree.root)
        print(f"tree: {len(paths)} files ({args.fraction:.0%} of the release), {frames:,} frames")
        rows = []
        start = time.perf_counter()
        load_every_array(paths)
        rows.append(("floor: np.load every file, 1 process", frames / (time.perf_counter() - start), 1))
        loop_paths = paths[: args.loop_files]
        loop_frames = sum(int(np.load(p)["poses"].shape[0]) for p in loop_paths)
        start = time.perf_counter()
        per_frame_loop(loop_paths)
        rows.append((f"per-frame loop (AMASS tools style, {len(loop_paths)} files)",
                     loop_frames / (time.perf_counter() - start), 1))  # fmt: skip
        for workers in (2, 1):  # 2 first: a fresh process, as the CLI is, forks its workers
            if workers == 1:  # in-process work: import torch before timing (once per run, not per frame)
                import torch  # noqa: F401
            config = PrepareConfig(catalog=str(tree.root), out=str(tmp / f"out{workers}"), fps=30.0, trim_keep=0.8,
                                   rotation="rotmat", workers=workers)  # fmt: skip
            start = time.perf_counter()
            prepare(config)
            rows.append((f"amasskit prepare, {workers} process{'es' if workers > 1 else ''}",
                         frames / (time.perf_counter() - start), workers))  # fmt: skip
    floor_rate = rows[0][1]
    print(f"{'method':48s} {'frames/s':>10s} {'per core':>10s} {'of floor':>9s} {'all AMASS':>10s}")
    for name, rate, cores in rows:
        print(f"{name:48s} {rate:10,.0f} {rate / cores:10,.0f} {rate / floor_rate:8.0%} "
              f"{FULL_FRAMES / rate / 60:8.1f} min")  # fmt: skip


if __name__ == "__main__":
    main()
