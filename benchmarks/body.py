"""SMPL+H forward passes: amasskit against smplx, full vertices and joints only, in one run.

Both run the same synthetic SMPL+H-sized model (6,890 vertices, 52 joints, 16 betas) in float32 on the CPU, at
batch 32, 256 and 4,096, with random shapes and poses. smplx always computes every vertex; its joints come from that
full pass. amasskit's joints-only path runs forward kinematics on a precomputed joint template and never forms a
vertex. Figures are poses per second (best of a few repeats, after a warm-up).

Run::

    .venv/bin/python benchmarks/body.py [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from amasskit.body import BodyModel
from amasskit.synth import write_body_models


def rate(fn: Callable[[], object], batch: int, seconds: float = 2.0) -> float:
    fn()  # warm-up
    best = float("inf")
    deadline = time.perf_counter() + seconds
    runs = 0
    while runs < 3 or (time.perf_counter() < deadline and runs < 50):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
        runs += 1
    return batch / best


def measure(
    batch: int, ours: BodyModel, ref: torch.nn.Module, g: torch.Generator
) -> tuple[float, float, float]:
    """Poses per second at ``batch``: smplx full, amasskit full, amasskit joints only."""
    betas = torch.randn(batch, 16, generator=g)
    root = torch.randn(batch, 3, generator=g)
    body = torch.randn(batch, 63, generator=g) * 0.4
    hands = torch.randn(batch, 90, generator=g) * 0.3
    trans = torch.randn(batch, 3, generator=g)

    def smplx_forward() -> object:
        return ref(betas=betas, global_orient=root, body_pose=body, left_hand_pose=hands[:, :45],
                   right_hand_pose=hands[:, 45:], transl=trans)  # fmt: skip

    def posed() -> object:
        return ours.with_shape(betas).with_pose(
            root_orient=root, pose_body=body, pose_hand=hands, trans=trans
        )

    with torch.inference_mode():
        return (
            rate(smplx_forward, batch),
            rate(lambda: posed().vertices, batch),  # type: ignore[attr-defined]
            rate(lambda: posed().joints, batch),  # type: ignore[attr-defined]
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 256, 4096])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import smplx

    class SMPLH16(smplx.SMPLH):  # type: ignore[misc]
        SHAPE_SPACE_DIM = 16  # smplx would cut AMASS's 16 betas to 10

    with tempfile.TemporaryDirectory() as tmp:
        write_body_models(tmp, models=("smplh",), hand_pca=True)
        path = Path(tmp) / "smplh" / "male" / "model.npz"
        ours = BodyModel.load(path, "male", dmpl=False)
        ref = SMPLH16(model_path=str(path), ext="npz", num_betas=16, use_pca=False, flat_hand_mean=True)
    print(f"machine: {args.threads} threads, {platform.machine()}, torch {torch.__version__}, float32, CPU")
    header = f"{'batch':>6s} {'smplx full':>11s} {'amasskit full':>14s} {'ratio':>7s} {'amasskit joints':>16s} {'vs smplx':>9s}"
    print(header)
    g = torch.Generator().manual_seed(0)
    ours_joints = 1.0
    for batch in args.batches:
        smplx_full, ours_full, ours_joints = measure(batch, ours, ref, g)
        print(f"{batch:6d} {smplx_full:11,.0f} {ours_full:14,.0f} {ours_full / smplx_full:6.1f}x "
              f"{ours_joints:16,.0f} {ours_joints / smplx_full:8.0f}x")  # fmt: skip
    frames = 19_775_902
    print(
        f"all {frames:,} AMASS frames, joints only at the batch-4,096 rate: {frames / ours_joints / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
