"""``amasskit prior poses|data``: pose-prior training data."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ._app import DaskAddress, app, console, handle_errors, progress_bar

prior_app = typer.Typer(
    no_args_is_help=True,
    help="Pose priors: `prior poses` samples clean pose sets from a catalog; `prior data` makes noisy samples "
    "with their exact nearest clean poses.",
)
app.add_typer(prior_app, name="prior")


class NoiseChoice(str, Enum):
    posendf = "posendf"
    nrdf = "nrdf"
    haar = "haar"
    mixture = "mixture"


class MetricChoice(str, Enum):
    posendf = "posendf"
    geodesic = "geodesic"


class JointsChoice(str, Enum):
    body = "body"
    body_hands = "body+hands"


class PresetChoice(str, Enum):
    posendf = "posendf"
    vposer = "vposer"


@prior_app.command("poses")
def poses(
    config_file: Annotated[
        Path | None, typer.Argument(metavar="[CONFIG.yaml]", help="YAML or JSON config (keys as the flags).")
    ] = None,
    catalog: Annotated[Path | None, typer.Option(help="Catalog (database or scanned folder).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the pose sets (one per split).")
    ] = None,
    scheme: Annotated[str | None, typer.Option(help="Recorded split scheme; none: one set 'all'.")] = None,
    split: Annotated[list[str] | None, typer.Option(help="Only these splits (repeatable).")] = None,
    dataset: Annotated[list[str] | None, typer.Option(help="Only these sub-datasets (repeatable).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model (smplh, smplx).")] = None,
    preset: Annotated[
        PresetChoice | None, typer.Option(help="Sampling preset: 30% of the frames of the middle 80%.")
    ] = None,
    fraction: Annotated[
        float | None, typer.Option(help="Fraction of each sequence's frames (the preset's).")
    ] = None,
    trim_keep: Annotated[
        float | None, typer.Option(help="Middle fraction sampled from (the preset's).")
    ] = None,
    fps: Annotated[float | None, typer.Option(help="Resample to this rate first.")] = None,
    joints: Annotated[JointsChoice | None, typer.Option(help="21 body joints, or 51 with the hands.")] = None,
    dedup: Annotated[
        float | None, typer.Option(help="Drop poses within this geodesic distance (rad) of an earlier one.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the sampling.")] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Processes (default: all cores).")
    ] = None,
    strict: Annotated[bool | None, typer.Option(help="Stop at the first unreadable file.")] = None,
    dask: DaskAddress = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing pose sets of another config.")] = False,
) -> None:
    """Clean pose sets from a catalog, one per split, as VPoser and Pose-NDF sample AMASS; every pose keeps its
    source file and frame. Resumable, parallel, on a Dask cluster with --dask (through `prepare`)."""
    from ..prepare import load_config_file
    from ..prior import PoseSet, PoseSetConfig, build_pose_sets

    flags = {"catalog": catalog, "out": out, "scheme": scheme, "splits": split, "datasets": dataset, "model": model,
             "preset": None if preset is None else preset.value, "frame_fraction": fraction, "trim_keep": trim_keep,
             "fps": fps, "joints": None if joints is None else joints.value, "dedup": dedup, "seed": seed,
             "workers": jobs, "strict": strict, "dask": dask}  # fmt: skip
    with handle_errors():
        data: dict[str, Any] = {} if config_file is None else load_config_file(config_file)
        data.update(
            {k: (str(v) if isinstance(v, Path) else v) for k, v in flags.items() if v not in (None, [])}
        )
        config = PoseSetConfig.from_mapping(data)
    with handle_errors(), progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def on_progress(split_name: str, done: int, total: int) -> None:
            if split_name not in tasks:
                tasks[split_name] = bar.add_task("sampling poses", total=total)
            bar.update(tasks[split_name], completed=done)

        sets = build_pose_sets(config, overwrite=overwrite, progress=on_progress)
    table = Table(title="pose sets")
    for col in ("split", "pose set", "sequences", "poses"):
        table.add_column(col, justify="right" if col in ("sequences", "poses") else "left")
    for name, path in sets.items():
        ps = PoseSet(path)
        table.add_row(name, str(path), f"{len(ps.store):,}", f"{len(ps):,}")
    console.print(table)


@prior_app.command("data")
def data(
    poses_path: Annotated[Path, typer.Argument(metavar="POSES", help="A pose set (`amasskit prior poses`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the training set.")],
    samples_per_pose: Annotated[int, typer.Option(min=1, help="Noisy samples of each clean pose.")] = 10,
    noise: Annotated[NoiseChoice, typer.Option(help="Perturbation scheme.")] = NoiseChoice.nrdf,
    sigma: Annotated[
        list[float] | None, typer.Option(help="The scheme's noise levels (repeatable; default: its own).")
    ] = None,
    distance: Annotated[
        MetricChoice, typer.Option(help="Distance to the clean poses.")
    ] = MetricChoice.geodesic,
    k: Annotated[int, typer.Option("--k", min=1, help="Nearest clean poses kept per sample.")] = 5,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the noise.")] = 0,
    max_poses: Annotated[
        int | None, typer.Option(min=1, help="Samples of only this many clean poses, spread over the set.")
    ] = None,
    chunk: Annotated[int, typer.Option(min=1, help="Clean poses per chunk (bounds memory).")] = 1024,
    device: Annotated[str, typer.Option(help="cpu or cuda (the search's matrix products).")] = "cpu",
    dask: DaskAddress = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a training set of another config.")] = False,
) -> None:
    """Noisy samples of every clean pose with their exact k nearest clean poses and distances (equal to brute force),
    memory-mappable for training. Chunked, resumable after a kill, the same bytes on any device or cluster."""
    from ..prior import TrainingData, TrainingDataConfig, build_training_data

    with handle_errors():
        sigmas = {} if not sigma or noise is NoiseChoice.mixture else {noise.value: tuple(sigma)}
        config = TrainingDataConfig(poses=str(poses_path), out=str(out), samples_per_pose=samples_per_pose,
                                    noise=noise.value, sigmas=sigmas, metric=distance.value, k=k, seed=seed,
                                    max_poses=max_poses, chunk=chunk, device=device, dask=dask)  # fmt: skip
    with handle_errors(), progress_bar() as bar:
        task = bar.add_task("noisy poses and their neighbours", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        path = build_training_data(config, overwrite=overwrite, progress=on_progress)
    result = TrainingData(path)
    console.print(f"{path}: {len(result):,} samples of {result.manifest['sources']:,} clean poses, "
                  f"{k} nearest by {distance.value} distance ({result.manifest['experiment_id']})")  # fmt: skip


class TrainPresetChoice(str, Enum):
    nrdf = "nrdf"
    posendf = "posendf"


class PrecisionChoice(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


@prior_app.command("train")
def train(
    config_file: Annotated[
        Path | None, typer.Argument(metavar="[CONFIG.yaml]", help="YAML or JSON config (keys as the flags).")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Training set (`amasskit prior data`).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for checkpoints, logs, model.")
    ] = None,
    val_data: Annotated[Path | None, typer.Option(help="Held-out training set for validation.")] = None,
    preset: Annotated[
        TrainPresetChoice | None,
        typer.Option(help="Published settings: activation, learning rate, loss weights."),
    ] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Optimiser steps.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Noisy poses a step (over all ranks).")
    ] = None,
    lr: Annotated[float | None, typer.Option(min=0.0, help="Learning rate (the preset's).")] = None,
    lr_schedule: Annotated[str | None, typer.Option(help="constant (the originals') or cosine.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed of the weights and the batch order.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N.")] = None,
    precision: Annotated[
        PrecisionChoice | None, typer.Option(help="bf16 autocast where fast (auto), or fp32/bf16.")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=0, help="DataLoader worker processes.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a run of another config in --out.")] = False,
) -> None:
    """Train a distance field (Pose-NDF's network, the tree's parent map) on a training set: distance, manifold and
    eikonal losses, AdamW, validation (MAE, Spearman, AUROC), atomic checkpoints; run it again to resume. Several
    GPUs: `torchrun --nproc-per-node N -m amasskit prior train CONFIG`."""
    from ..errors import ConfigError
    from ..prepare import load_config_file
    from ..prior import TrainConfig
    from ..prior import train as run_training

    flags = {"data": data, "out": out, "val_data": val_data, "preset": None if preset is None else preset.value,
             "steps": steps, "batch_size": batch_size, "lr": lr, "lr_schedule": lr_schedule, "seed": seed,
             "device": device, "precision": None if precision is None else precision.value, "workers": workers}  # fmt: skip
    with handle_errors():
        values: dict[str, Any] = {} if config_file is None else load_config_file(config_file)
        values.update({k: (str(v) if isinstance(v, Path) else v) for k, v in flags.items() if v is not None})
        for key in ("data", "out"):
            if key not in values:
                raise ConfigError(f"--{key} (or {key}: in the config) is required", key=key)
        config = TrainConfig.from_mapping(values)
    with handle_errors(), progress_bar() as bar:
        task = bar.add_task("training", total=config.steps)
        latest: dict[str, float] = {}

        def on_progress(step: int, total: int, metrics: Any) -> None:
            latest.update(metrics)
            shown = ", ".join(f"{k} {metrics[k]:.4g}" for k in ("loss", "mae", "auroc") if k in metrics)
            bar.update(task, completed=step, total=total, description=f"training ({shown})")

        path = run_training(config, overwrite=overwrite, progress=on_progress)
    table = Table(title=f"trained: {path}")
    for col in ("metric", "value"):
        table.add_column(col)
    for key, value in latest.items():
        table.add_row(key, f"{value:.5g}")
    console.print(table)


class StartChoice(str, Enum):
    haar = "haar"
    noisy_identity = "noisy-identity"


@prior_app.command("sample")
def sample(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="model.pt, or a released checkpoint.")],
    count: Annotated[int, typer.Option("-n", min=1, help="Poses to generate.")] = 100,
    out: Annotated[Path, typer.Option("--out", "-o", help="The npz to write.")] = Path("samples.npz"),
    start: Annotated[
        str, typer.Option(help="haar, noisy-identity, or an .npy of (N, 21, 4) poses.")
    ] = "haar",
    tol: Annotated[float | None, typer.Option(help="Stop under this distance (1e-3 a joint).")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="Network evaluations a pose at most.")] = 100,
    keep_steps: Annotated[bool, typer.Option(help="Also write every projection step.")] = False,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the starts.")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Plausible poses: random starts projected onto the prior's manifold (quat, pose_body, distance, converged,
    steps, evaluations; with --keep-steps every step, for viewing)."""
    import numpy as np

    from ..errors import InvalidArgumentError
    from ..prior import load_prior, sample_poses, save_poses

    with handle_errors():
        model = load_prior(model_path, map_location=device)
        begin: Any = start
        if start not in ("haar", "noisy-identity"):
            try:
                begin = np.load(start, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise InvalidArgumentError(
                    f"--start {start}: not haar, noisy-identity or a readable .npy ({exc})"
                ) from None
        result = sample_poses(model, count, start=begin, seed=seed, tol=tol, max_steps=max_steps,
                              keep_steps=keep_steps)  # fmt: skip
        extra = {} if result.history is None else {"history_quat": result.history.cpu().numpy(),
                                                   "history_distance": result.history_distance.cpu().numpy()}  # type: ignore[union-attr]  # fmt: skip
        save_poses(out, result.quat.detach().cpu().numpy(), distance=result.distance.cpu().numpy(),
                   converged=result.converged.cpu().numpy(), steps=result.steps.cpu().numpy(),
                   evaluations=result.evaluations.cpu().numpy(), **extra)  # fmt: skip
    console.print(f"{out}: {count:,} poses, {float(result.converged.float().mean()):.1%} under tol, "
                  f"{float(result.evaluations.float().mean()):.1f} evaluations a pose")  # fmt: skip


@prior_app.command("interpolate")
def interpolate(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="model.pt, or a released checkpoint.")],
    a: Annotated[str, typer.Argument(metavar="A", help="FILE#frame of a motion file, or an .npy pose.")],
    b: Annotated[str, typer.Argument(metavar="B", help="FILE#frame of a motion file, or an .npy pose.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The npz to write.")] = Path("path.npz"),
    steps: Annotated[int, typer.Option(min=1, help="Steps at most.")] = 200,
    step_size: Annotated[float, typer.Option(help="Fraction of the way to B a step.")] = 0.1,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """A path from pose A to pose B on the prior's manifold (projected after every step; ends at B)."""
    from ..prior import interpolate_poses, load_prior, read_pose, save_poses

    with handle_errors():
        model = load_prior(model_path, map_location=device)
        joints = int(model.config.joints)
        path, distance = interpolate_poses(model, read_pose(a, joints=joints), read_pose(b, joints=joints),
                                           step_size=step_size, max_steps=steps)  # fmt: skip
        save_poses(out, path, distance=distance)
    console.print(
        f"{out}: {len(path)} poses from A to B, largest distance on the way {float(distance.max()):.4g}"
    )
