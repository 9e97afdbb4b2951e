"""Axis-angle to rotation matrices in torch: amasskit's Rodrigues formula against roma's, with the floor, in one run.

Also the cost of importing each in a fresh interpreter (roma 1.8 imports torch's compiler at import time, which every
command posing a body used to pay). The floor is one elementwise pass that writes the ``(N, 3, 3)`` output from the
``(N, 3)`` input (a multiply-add per entry): no formula can write its result in less. Figures: best of several
repeats after a warm-up, forward only and forward plus backward, float32 and float64, one thread (as test workers and
file-conversion workers run) unless ``--threads``.

Run::

    .venv/bin/python benchmarks/rotations.py [--threads 1] [--batch 212992]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from collections.abc import Callable

import torch


def best_seconds(fn: Callable[[], object], seconds: float = 1.5) -> float:
    fn()  # warm-up
    best, runs, deadline = float("inf"), 0, time.perf_counter() + seconds
    while runs < 3 or (time.perf_counter() < deadline and runs < 50):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
        runs += 1
    return best


def import_seconds(module: str) -> float:
    """Seconds to import ``module`` in a fresh interpreter that has already imported torch (best of 3)."""
    code = f"import time, torch; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]  # fmt: skip
    return min(runs)


def milliseconds(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, backward: bool) -> float:
    """Best time of ``fn(x)`` (and, with ``backward``, the backward pass of its sum)."""

    def run() -> None:
        if backward:
            v = x.clone().requires_grad_(True)
            fn(v).sum().backward()
        else:
            with torch.no_grad():
                fn(x)

    return best_seconds(run) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--batch", type=int, default=4096 * 52, help="rotations a call (default 4,096 x 52 joints)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import roma

    from amasskit.rotations import rotvec_to_rotmat

    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, roma {roma.__version__}, "
          f"{args.threads} thread(s), {args.batch:,} rotations a call")  # fmt: skip
    roma_import, ours_import = import_seconds("roma"), import_seconds("amasskit.rotations")
    print(f"import (after torch): roma {roma_import:.2f} s, amasskit.rotations {ours_import:.2f} s")
    print(
        f"{'dtype':8} {'pass':14} {'roma ms':>9} {'amasskit ms':>12} {'floor ms':>9} {'vs roma':>8} {'of floor':>9}"
    )
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(args.batch, 3, dtype=dtype)
        weights = torch.randn(3, 3, 3, dtype=dtype)

        def floor_pass(v: torch.Tensor, weights: torch.Tensor = weights) -> torch.Tensor:
            return torch.einsum("nc,ijc->nij", v, weights)  # one pass writing (N, 3, 3)

        for label, backward in (("forward", False), ("forward+back", True)):
            floor = milliseconds(floor_pass, x, backward=backward)
            theirs = milliseconds(roma.rotvec_to_rotmat, x, backward=backward)
            ours = milliseconds(rotvec_to_rotmat, x, backward=backward)
            print(f"{str(dtype).removeprefix('torch.'):8} {label:14} {theirs:9.2f} {ours:12.2f} {floor:9.2f} "
                  f"{theirs / ours:7.2f}x {floor / ours:8.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
