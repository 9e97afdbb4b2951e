"""The distance-field network, its training step and projection: amasskit beside a per-bone loop, in one run.

* amasskit: :class:`amasskit.prior.DistanceField` (bones of one tree depth in one batched product), float32 and, where
  the CPU has AVX512-BF16 or the GPU bfloat16, under bfloat16 autocast (what ``prior train`` uses by default there);
* the per-bone loop: the same architecture written as the originals run it (21 ``nn.Sequential`` bone MLPs called
  one by one along the parent map, then the distance MLP layer by layer), float32;
* the roofline: the distance MLP's matrix products alone, timed at the same batch (a lower bound on any
  implementation's time at that precision).

Cases: forward (no gradient), a training step (noisy and clean batches, the eikonal term's double backward,
AdamW), at batch 256 and 10,000 (the loop under bfloat16 autocast too, to separate what the batching and what the
precision gives); projection of 1,000 Haar-random poses on the exact field of a grid over the synthetic pose manifold
(:class:`amasskit.prior.ExactField`: how the methods converge on a field without a learning error), and of 10,000
with a model trained here on that manifold
(:class:`amasskit.synth.PoseManifold`, about a minute and a half), to ``tol = 1e-3`` a joint (Pose-NDF's
``--max-projection-distance``; 0.021 for amasskit's fields, summed over 21 joints): amasskit's RDFGrad with step
control and early stopping against Pose-NDF's loop (100 fixed steps).

Usage: ``.venv/bin/python benchmarks/prior_model.py [--device cuda] [--quick]``.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from amasskit.prior import (
    DistanceField,
    DistanceFieldConfig,
    ExactField,
    TrainConfig,
    TrainingDataConfig,
    build_training_data,
    load_model,
    project_to_manifold,
    random_poses,
    train,
    write_pose_set,
)
from amasskit.prior.field._train import adamw_optimizer, use_bf16
from amasskit.synth import PoseManifold

PARENTS = (-1, -1, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 11, 12, 13, 15, 16, 17, 18)
DIMS = (256, 512, 1024, 512, 256, 64)


class PerBoneLoop(nn.Module):
    """The architecture as the originals evaluate it: one bone MLP call at a time."""

    def __init__(self) -> None:
        super().__init__()

        def act() -> nn.Module:
            return nn.Softplus(beta=100)

        self.bones = nn.ModuleList(
            nn.Sequential(nn.Linear(4 if p < 0 else 10, 10), act(), nn.Linear(10, 6), act()) for p in PARENTS
        )
        widths = [126, *DIMS, 1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))

    def forward(self, quat: torch.Tensor) -> torch.Tensor:
        q = functional.normalize(quat, dim=-1)
        feats: list[torch.Tensor] = []
        for i, bone in enumerate(self.bones):
            feats.append(bone(q[:, i] if PARENTS[i] < 0 else torch.cat([q[:, i], feats[PARENTS[i]]], -1)))
        x = torch.cat(feats, -1)
        for layer in self.layers:
            x = functional.softplus(layer(x), beta=100)
        return x[:, 0]


def timed(fn: Callable[[], object], *, repeat: int, device: torch.device) -> float:
    """Median seconds of ``fn`` over ``repeat`` runs after two warm-ups."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: int, *, bf16: bool,
                  device: torch.device) -> Callable[[], None]:  # fmt: skip
    g = torch.Generator().manual_seed(0)
    noisy = torch.randn(batch, 21, 4, generator=g).to(device)
    clean = torch.randn(batch, 21, 4, generator=g).to(device)
    target = torch.rand(batch, generator=g).to(device)

    def step() -> None:
        q = noisy.clone().requires_grad_(True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            pred = model(q).float()
            on_manifold = model(clean).float()
        (grad,) = torch.autograd.grad(pred.sum(), q, create_graph=True)
        loss = (pred - target).abs().mean() + 0.1 * on_manifold.abs().mean()
        loss = loss + (grad.float().norm(dim=-1) - 1).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def forward(model: nn.Module, batch: int, *, bf16: bool, device: torch.device) -> Callable[[], None]:
    q = torch.randn(batch, 21, 4, generator=torch.Generator().manual_seed(1)).to(device)

    def run() -> None:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            model(q)

    return run


def roofline(batch: int, dtype: torch.dtype, device: torch.device, *, passes: int) -> Callable[[], None]:
    """The distance MLP's products (``passes`` of them per layer: 1 forward, 9 a training step) and nothing else."""
    widths = [126, *DIMS, 1]
    weights = [torch.randn(b, a, dtype=dtype, device=device) for a, b in itertools.pairwise(widths)]
    inputs = [torch.randn(batch, a, dtype=dtype, device=device) for a in widths[:-1]]

    def run() -> None:
        for _ in range(passes):
            for x, w in zip(inputs, weights, strict=True):
                x @ w.T

    return run


def trained_model(root: Path, device: str) -> tuple[DistanceField, ExactField]:
    """A model trained on the synthetic manifold, and the exact field of its clean set (the true distance)."""
    manifold = PoseManifold(dim=2, seed=0)
    sigmas = {"nrdf": (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)}
    write_pose_set(manifold.poses(manifold.grid(128)), root / "clean")
    build_training_data(TrainingDataConfig(poses=str(root / "clean"), out=str(root / "train"), samples_per_pose=6,
                                           max_poses=8000, noise="nrdf", sigmas=sigmas, k=1))  # fmt: skip
    config = TrainConfig(data=str(root / "train"), out=str(root / "run"), dims=(128, 128, 64), lr=3e-3,
                         lr_schedule="cosine", w_dist=1.0, w_manifold=0.1, w_eikonal=0.0, w_gradient=0.2,
                         steps=4000, log_every=1000, checkpoint_every=4000, device=device)  # fmt: skip
    clean = torch.from_numpy(manifold.poses(manifold.grid(128)))
    return load_model(train(config), map_location=device), ExactField(clean)


PROJECTIONS: list[tuple[str, dict[str, object]]] = [
    ("amasskit: RDFGrad, step control, stop at tol", {"method": "rdfgrad", "max_steps": 100}),
    ("amasskit: Pose-NDF direction, step control, stop at tol", {"method": "posendf", "max_steps": 100}),
    (
        "Pose-NDF's loop: 100 fixed steps",
        {"method": "posendf", "max_steps": 100, "step_control": False, "tol": 0.0},
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 1,000 poses projected")
    parser.add_argument("--projection-only", action="store_true", help="skip the network timings")
    args = parser.parse_args()
    device = torch.device(args.device)
    bf16 = use_bf16("auto", device)
    repeat = 3 if args.quick else 7
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, device {device}, bfloat16 autocast where fast: {bf16}")  # fmt: skip
    torch.manual_seed(0)
    ours, loop = DistanceField(DistanceFieldConfig(dims=DIMS)).to(device), PerBoneLoop().to(device)
    if not args.projection_only:
        print("\n| case | batch | per-bone loop fp32 poses/s | loop bf16 | amasskit fp32 | amasskit auto (bf16 here) | "
              "roofline fp32 | roofline bf16 | amasskit fp32 vs loop fp32 | amasskit auto vs loop fp32 |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in () if args.projection_only else ("forward", "training step (eikonal)"):
        for batch in (256, 10_000):
            passes = 1 if case == "forward" else 9
            rates = {}
            runs = (
                ("loop", loop, False),
                ("loop16", loop, bf16),
                ("fp32", ours, False),
                ("auto", ours, bf16),
            )
            for name, model, low in runs:
                if case == "forward":
                    fn = forward(model, batch, bf16=low, device=device)
                else:
                    # the trainer's optimiser (fused AdamW) for both: the comparison is of the networks
                    fn = training_step(
                        model, adamw_optimizer(model, 1e-4, 0.0), batch, bf16=low, device=device
                    )
                rates[name] = batch / timed(
                    fn, repeat=repeat if batch == 256 else max(2, repeat // 2), device=device
                )
            for name, dtype in (("roof32", torch.float32), ("roof16", torch.bfloat16)):
                rates[name] = batch / timed(
                    roofline(batch, dtype, device, passes=passes), repeat=repeat, device=device
                )
            print(f"| {case} | {batch:,} | {rates['loop']:,.0f} | {rates['loop16']:,.0f} | {rates['fp32']:,.0f} | "
                  f"{rates['auto']:,.0f} | {rates['roof32']:,.0f} | {rates['roof16']:,.0f} | "
                  f"{rates['fp32'] / rates['loop']:.2f}x | **{rates['auto'] / rates['loop']:.2f}x** |")  # fmt: skip

    manifold = PoseManifold(dim=2, seed=0)
    exact = ExactField(torch.from_numpy(manifold.poses(manifold.grid(32)))).to(device)
    count = 1000 if args.quick else 10_000
    generator = torch.Generator().manual_seed(0)
    # the exact field costs B x 1,024 x 21 float64 terms an evaluation (10,000 poses: 9 GB): 1,000 poses here
    projection_table("1,000 Haar-random poses, the exact field of a 32 x 32 grid over the manifold", exact,
                     random_poses(1000, generator=generator, dtype=torch.float64, device=device), truth=None)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        start_time = time.perf_counter()
        model, truth = trained_model(Path(tmp), args.device)
        print(
            f"\n# projection: model trained on the synthetic manifold in {time.perf_counter() - start_time:.0f} s"
        )
    start = random_poses(count, generator=torch.Generator().manual_seed(0), device=device)
    projection_table(f"{count:,} Haar-random poses, the trained model", model, start, truth=truth)
    true0 = truth(start[:200].cpu()).numpy()
    print(f"\n(start: median true distance {np.median(true0):.2f} rad; true distances: to the 128 x 128 clean grid, "
          "exactly, for the first 200 poses)")  # fmt: skip


def projection_table(
    title: str, field: torch.nn.Module, start: torch.Tensor, *, truth: ExactField | None
) -> None:
    """One row per method: evaluations a pose, the share under tol, (the median true distance after), seconds."""
    tol = 1e-3 * 21
    print(f"\n| projection: {title}, tol {tol:.3f} (1e-3 a joint) | evaluations a pose (mean) | reached tol | "
          f"{'median true distance after (rad) | ' if truth is not None else ''}seconds |")  # fmt: skip
    print("|---|---:|---:|---:|" + ("---:|" if truth is not None else ""))
    for label, options in PROJECTIONS:
        t0 = time.perf_counter()
        out = project_to_manifold(field, start, **({"tol": tol} | options))  # type: ignore[arg-type]
        seconds = time.perf_counter() - t0
        reached = float((out.distance < tol).float().mean())
        true = "" if truth is None else f"{np.median(truth(out.quat[:200].cpu()).numpy()):.2f} | "
        print(
            f"| {label} | {float(out.evaluations.float().mean()):.1f} | {reached:.1%} | {true}{seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
