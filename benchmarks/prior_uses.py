"""Fitting with a pose prior: seconds per task with amasskit's batched distance field, with the same network written
as a per-bone loop (how the originals evaluate it), and with no prior (the floor: what the fit costs without the
prior term), in one run.

Tasks (the field: Pose-NDF's architecture at its released size, 126-256-512-1024-512-256-64-1, random weights: the
time does not depend on them):

* denoise: a 60-frame clip, Pose-NDF's schedule (5 rounds of 50 Adam steps; data, temporal, shape and prior terms),
  starting from its noisy poses;
* fit (3D): one frame's 22 joints, inverse kinematics (400 Adam steps, one hypothesis);
* fit (2D): one frame's OpenPose keypoints, the SMPLify-style stages (600 steps, one hypothesis).

Each on the built-in skeleton and on a (synthetic, released-layout) SMPL+H body model's joints. Then the prior's own
cost inside the loop: field value and gradient evaluations per second at batch 1 and 60. The target: the prior adds
under 10% to a fit's time ("prior +%": the prior's time over the no-prior time, less one).

Usage: ``.venv/bin/python benchmarks/prior_uses.py [--repeat 5]``.
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
from prior_model import PerBoneLoop

from amasskit.body import BodyModel
from amasskit.prior import (
    DistanceField,
    DistanceFieldConfig,
    Kinematics,
    denoise_motion,
    fit_joints,
    fit_keypoints,
    keypoints_from_joints,
    prior_distance,
)
from amasskit.synth import PoseManifold
from amasskit.synth._body_models import write_body_models
from amasskit.viz._skeleton import skeleton_joints


class Loop(PerBoneLoop):
    """The per-bone loop over any leading dimensions (the fits batch observations and hypotheses)."""

    def forward(self, quat: torch.Tensor) -> torch.Tensor:
        return super().forward(quat.reshape(-1, *quat.shape[-2:])).reshape(quat.shape[:-2])


def seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each function, the functions run in turn within every repeat (so a machine that speeds
    up or slows down during the run affects them alike)."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--device", default="cpu", help="cpu or cuda: the fits, the bodies and the fields run there"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    torch.set_num_threads(torch.get_num_threads())
    ours = DistanceField(DistanceFieldConfig(activation="softplus")).eval().to(device)
    loop = Loop().eval().to(device)
    loop.config = DistanceFieldConfig()  # type: ignore[assignment]  # what the fitting code reads of a field
    fields: dict[str, torch.nn.Module | None] = {"amasskit": ours, "per-bone loop": loop, "no prior": None}

    manifold = PoseManifold(dim=2, seed=0)
    T = 60
    tau = np.linspace(0, 1, T)[:, None]
    from amasskit.rotations import quat_to_rotvec

    rotvec = np.asarray(
        quat_to_rotvec(manifold.poses(np.array([0.5, 2.0]) + tau * [1.5, -1.0]).astype(np.float64))
    )
    root = np.tile([np.pi / 2, 0.0, 0.0], (T, 1))
    trans = np.concatenate([tau, np.zeros((T, 2))], axis=1)
    rng = np.random.default_rng(0)
    noisy_pose = rotvec + rng.normal(0, 0.1, rotvec.shape)

    with tempfile.TemporaryDirectory() as tmp:
        write_body_models(Path(tmp))
        bodies = {
            "skeleton": Kinematics().to(device),
            "SMPL+H": Kinematics(BodyModel.load("smplh", "neutral", model_dir=tmp, device=device)),
        }
        print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
              f"torch {torch.__version__}, device {device}")  # fmt: skip
        header = (
            f"{'task':<14}{'body':<10}"
            + "".join(f"{name:>16}" for name in fields)
            + f"{'prior +%':>11}{'loop/ours':>11}"
        )
        print(header)
        for body_name, kin in bodies.items():
            with torch.no_grad():
                t = [
                    torch.as_tensor(a, dtype=torch.float32, device=device) for a in (root, noisy_pose, trans)
                ]
                observed = kin(*t, None).cpu().numpy()
                frame_joints = kin(*(x[:1] for x in t), None).cpu().numpy()
                cam = skeleton_joints(np.array([[np.pi, 0, 0]]), rotvec[:1], np.array([[0, 0, 3.0]]))[:, :22]
            keypoints = keypoints_from_joints(cam, (1000.0, 1000.0, 500.0, 500.0))
            init = {"root_orient": root, "pose_body": noisy_pose, "trans": trans}
            tasks: dict[str, Callable[[torch.nn.Module | None], object]] = {
                "denoise 60f": lambda f, kin=kin, observed=observed, init=init: denoise_motion(
                    f, observed, kinematics=kin, init=init),
                "fit 3D 1f": lambda f, kin=kin, fj=frame_joints: fit_joints(f, fj, kinematics=kin, steps=400),
                "fit 2D 1f": lambda f, kin=kin, kp=keypoints: fit_keypoints(
                    f, kp, intrinsics=(1000.0, 1000.0, 500.0, 500.0), kinematics=kin, hypotheses=1,
                    steps=(100, 150, 150, 200)),
            }  # fmt: skip
            for task, run in tasks.items():
                times = interleaved(
                    {name: lambda run=run, f=f: run(f) for name, f in fields.items()}, args.repeat
                )
                extra = 100 * (times["amasskit"] / times["no prior"] - 1)
                ratio = times["per-bone loop"] / times["amasskit"]
                print(f"{task:<14}{body_name:<10}" + "".join(f"{times[n]:>15.3f}s" for n in fields)
                      + f"{extra:>10.1f}%{ratio:>10.2f}x", flush=True)  # fmt: skip

    print("\nthe prior inside the loop: value + gradient evaluations per second")
    widths = [126, 256, 512, 1024, 512, 256, 64, 1]
    weights = [torch.randn(a, b, device=device) for a, b in itertools.pairwise(widths)]
    # CUDA runs asynchronously: each timed call waits for its work
    sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for batch in (1, 60):
        pose = torch.as_tensor(noisy_pose[:batch], dtype=torch.float32, device=device)
        rates = {}
        for name in ("amasskit", "per-bone loop"):
            field = fields[name]
            assert field is not None

            def step(field: torch.nn.Module = field, pose: torch.Tensor = pose) -> None:
                p = pose.clone().requires_grad_(True)
                (prior_distance(field, p) ** 2).sum().backward()

            for prm in field.parameters():
                prm.requires_grad_(False)
            rates[name] = (
                1 / seconds(lambda step=step: ([step() for _ in range(20)], sync()), args.repeat) * 20
            )
        # the roofline: the distance MLP's matrix products alone, forward and the input gradient (the weights are
        # frozen in a fit), no activation, no bone MLP: a lower bound on any implementation at fp32
        xs = [torch.randn(batch, a, device=device) for a in widths[:-1]]
        gs = [torch.randn(batch, b, device=device) for b in widths[1:]]

        def products(xs: list[torch.Tensor] = xs, gs: list[torch.Tensor] = gs) -> None:
            for x, g, w in zip(xs, gs, weights, strict=True):
                x @ w
                g @ w.T

        rates["roofline"] = 1 / seconds(lambda: ([products() for _ in range(20)], sync()), args.repeat) * 20
        print(f"  batch {batch:>3}: amasskit {rates['amasskit']:,.0f}/s, per-bone loop {rates['per-bone loop']:,.0f}/s "
              f"({rates['amasskit'] / rates['per-bone loop']:.2f}x), roofline {rates['roofline']:,.0f}/s "
              f"(amasskit at {rates['amasskit'] / rates['roofline']:.0%} of it)")  # fmt: skip


if __name__ == "__main__":
    main()
