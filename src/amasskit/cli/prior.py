"""``amasskit prior ...``: pose-prior training data, training, and the priors' uses and evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..choices import JointSet, Metric, NoiseScheme, PoseSetPreset, Precision, TrainPreset
from ._app import (
    SEED_MAX,
    AmassTyper,
    CatalogOption,
    DaskAddress,
    DatasetsOption,
    DeviceOption,
    GenderOption,
    JobsOption,
    MinDurationOption,
    ModelOption,
    SplitsOption,
    app,
    config_mapping,
    console,
    device_value,
    handle_errors,
    progress_bar,
    step_progress,
)

prior_app = AmassTyper(
    no_args_is_help=True,
    help="Pose priors: `prior poses` and `prior data` build training sets; `prior train` trains a distance field; "
    "`prior sample`, `interpolate`, `denoise` and `fit` use one (or a released checkpoint); `prior evaluate` compares "
    "priors on the published protocol.",
)
app.add_typer(prior_app, name="prior")


@prior_app.command("poses")
def poses(
    config_file: Annotated[
        Path | None, typer.Argument(metavar="[CONFIG.yaml]", help="YAML or JSON config (keys as the flags).")
    ] = None,
    catalog: CatalogOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the pose sets (one per split).")
    ] = None,
    scheme: Annotated[
        str | None, typer.Option(help="Recorded split scheme; none (or leave it out): one set 'all'.")
    ] = None,
    split: SplitsOption = None,
    dataset: DatasetsOption = None,
    model: ModelOption = None,
    gender: GenderOption = None,
    min_duration: MinDurationOption = None,
    preset: Annotated[
        PoseSetPreset | None,
        typer.Option(
            help="Sampling as Pose-NDF or VPoser sample AMASS (both: 30% of the frames of the middle 80%)."
        ),
    ] = None,
    fraction: Annotated[
        float | None,
        typer.Option(
            "--fraction", "--frame-fraction", help="Fraction of each sequence's frames (the preset's)."
        ),
    ] = None,
    trim_keep: Annotated[
        float | None, typer.Option(help="Middle fraction sampled from (the preset's).")
    ] = None,
    fps: Annotated[float | None, typer.Option(help="Resample to this rate first.")] = None,
    joints: Annotated[JointSet | None, typer.Option(help="21 body joints, or 51 with the hands.")] = None,
    dedup: Annotated[
        float | None, typer.Option(help="Drop poses within this geodesic distance (rad) of an earlier one.")
    ] = None,
    seed: Annotated[int | None, typer.Option(min=0, max=SEED_MAX, help="Seed of the sampling.")] = None,
    jobs: JobsOption = None,
    strict: Annotated[bool | None, typer.Option(help="Stop at the first unreadable file.")] = None,
    dask: DaskAddress = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing pose sets of another config.")] = False,
) -> None:
    """Clean pose sets from a catalog, one per split, as VPoser and Pose-NDF sample AMASS; every pose keeps its
    source file and frame. Resumable, parallel, on a Dask cluster with --dask (through `prepare`)."""
    from ..prior import PoseSet, PoseSetConfig, build_pose_sets

    flags = {
        "catalog": catalog,
        "out": out,
        "scheme": scheme,
        "splits": split,
        "datasets": dataset,
        "model": model,
        "gender": gender,
        "min_duration": min_duration,
        "preset": preset,
        "frame_fraction": fraction,
        "trim_keep": trim_keep,
        "fps": fps,
        "joints": joints,
        "dedup": dedup,
        "seed": seed,
        "workers": jobs,
        "strict": strict,
        "dask": dask,
    }
    with handle_errors():
        config = PoseSetConfig.from_mapping(config_mapping(config_file, flags))
    with handle_errors(), progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def on_progress(split_name: str, done: int, total: int) -> None:
            if split_name not in tasks:
                tasks[split_name] = bar.add_task("sampling poses", total=total)
            bar.update(tasks[split_name], completed=done)

        sets = build_pose_sets(config, overwrite=overwrite, progress=on_progress)
    table = Table(title="pose sets")
    for col in ("split", "pose set", "sequences", "poses"):
        table.add_column(col, justify="right" if col in ("sequences", "poses") else "left", overflow="fold")
    for name, path in sets.items():
        ps = PoseSet(path)
        table.add_row(name, str(path), f"{len(ps.store):,}", f"{len(ps):,}")
    console.print(table)


@prior_app.command("data")
def data(
    poses_path: Annotated[
        Path,
        typer.Argument(metavar="POSES", help="A pose set (`amasskit prior poses`), or the folder of one."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the training set.")],
    samples_per_pose: Annotated[int, typer.Option(min=1, help="Noisy samples of each clean pose.")] = 10,
    noise: Annotated[
        NoiseScheme,
        typer.Option(
            help="Perturbation: NRDF's tangent-space scheme, Pose-NDF's (its defects fixed), Haar-random rotations, "
            "or a mixture."
        ),
    ] = "nrdf",
    sigma: Annotated[
        list[float] | None, typer.Option(help="The scheme's noise levels (repeatable; default: its own).")
    ] = None,
    distance: Annotated[
        Metric,
        typer.Option(
            help="Distance to the clean poses: geodesic (NRDF's, half-angles summed, radians) or posendf "
            "(Pose-NDF's, sum of 1 - |cos|)."
        ),
    ] = "geodesic",
    k: Annotated[int, typer.Option("--k", min=1, help="Nearest clean poses kept per sample.")] = 5,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of the noise.")] = 0,
    max_poses: Annotated[
        int | None, typer.Option(min=1, help="Samples of only this many clean poses, spread over the set.")
    ] = None,
    chunk: Annotated[int, typer.Option(min=1, help="Clean poses per chunk (bounds memory).")] = 1024,
    device: Annotated[
        str, typer.Option(help="cpu or cuda (the search's matrix products).", callback=device_value)
    ] = "cpu",
    dask: DaskAddress = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a training set of another config.")] = False,
    wait: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for another run into the same -o (0: refuse).")
    ] = 0.0,
) -> None:
    """Noisy samples of every clean pose with their exact k nearest clean poses and distances (equal to brute force),
    memory-mappable for training. Chunked, resumable after a kill, the same bytes on any device or cluster."""
    from ..prior import TrainingData, TrainingDataConfig, build_training_data

    with handle_errors():
        sigmas: dict[str, tuple[float, ...]] = (
            {} if not sigma or noise == "mixture" else {noise: tuple(sigma)}
        )
        config = TrainingDataConfig(
            poses=str(poses_path),
            out=str(out),
            samples_per_pose=samples_per_pose,
            noise=noise,
            sigmas=sigmas,
            metric=distance,
            k=k,
            seed=seed,
            max_poses=max_poses,
            chunk=chunk,
            device=device,
            dask=dask,
        )
    with handle_errors(), progress_bar() as bar:
        task = bar.add_task("noisy poses and their neighbours", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        path = build_training_data(config, overwrite=overwrite, wait=wait, progress=on_progress)
    result = TrainingData(path)
    console.print(
        f"{path}: {len(result):,} samples of {result.manifest['sources']:,} clean poses, "
        f"{k} nearest by {distance} distance ({result.manifest['experiment_id']})"
    )


#: the figures `prior train` reports from its last validation (the rest are the training losses of the last step)
VALIDATION_METRICS = frozenset({"mae", "spearman", "auroc", "clean_mean"})


def _train_option(help: str, default: object = None, *names: str, **options: Any) -> Any:
    """An option of `prior train`: its default is None (the config file's value, else the config's default), and
    its help states the config's default (``tests/test_readme.py`` checks each against :class:`TrainConfig`)."""
    text = help if default is None else f"{help} (default {default})"
    return typer.Option(*names, help=text, **options)


@prior_app.command("train")
def train(
    config_file: Annotated[
        Path | None, typer.Argument(metavar="[CONFIG.yaml]", help="YAML or JSON config (keys as the flags).")
    ] = None,
    data: Annotated[Path | None, _train_option("Training set (`amasskit prior data`).")] = None,
    out: Annotated[
        Path | None, _train_option("Folder for checkpoints, logs, model.", None, "--out", "-o")
    ] = None,
    val_data: Annotated[Path | None, _train_option("Held-out training set for validation.")] = None,
    clean: Annotated[
        Path | None, _train_option("Pose set of the manifold term (default: the one the data was made from).")
    ] = None,
    preset: Annotated[
        TrainPreset | None,
        _train_option(
            "A paper's settings (NRDF's or Pose-NDF's): activation, learning rate, loss weights.", "nrdf"
        ),
    ] = None,
    activation: Annotated[
        str | None, _train_option("softplus, lrelu or relu (default: the preset's).")
    ] = None,
    beta: Annotated[float | None, _train_option("Softplus sharpness.", 100.0)] = None,
    dims: Annotated[
        str | None, _train_option("The MLP's hidden widths, comma-separated.", "256,512,1024,512,256,64")
    ] = None,
    parents: Annotated[
        str | None, _train_option("fixed (the kinematic tree) or official (the released map).", "fixed")
    ] = None,
    steps: Annotated[int | None, _train_option("Optimiser steps.", 100_000, min=1)] = None,
    batch_size: Annotated[
        int | None, _train_option("Noisy poses a step (over all ranks).", 256, min=1)
    ] = None,
    manifold_batch: Annotated[
        int | None, _train_option("Clean poses a step (default: the batch size).", None, min=1)
    ] = None,
    lr: Annotated[
        float | None, _train_option("Learning rate (default: the preset's).", None, min=0.0)
    ] = None,
    lr_schedule: Annotated[
        str | None, _train_option("constant (the originals') or cosine.", "constant")
    ] = None,
    warmup: Annotated[int | None, _train_option("Steps of linear warm-up.", 0, min=0)] = None,
    weight_decay: Annotated[float | None, _train_option("AdamW's weight decay.", 0.0, min=0.0)] = None,
    w_dist: Annotated[float | None, _train_option("Distance loss weight (default: the preset's).")] = None,
    w_manifold: Annotated[
        float | None, _train_option("Manifold loss weight (default: the preset's).")
    ] = None,
    w_eikonal: Annotated[float | None, _train_option("Eikonal loss weight (default: the preset's).")] = None,
    w_gradient: Annotated[float | None, _train_option("Gradient supervision weight.", 0.0)] = None,
    target: Annotated[
        str | None, _train_option("nearest or mean (of the k stored distances).", "nearest")
    ] = None,
    val_every: Annotated[int | None, _train_option("Steps between validations.", 1000, min=1)] = None,
    val_samples: Annotated[int | None, _train_option("Held-out samples a validation.", 20_000, min=1)] = None,
    checkpoint_every: Annotated[int | None, _train_option("Steps between checkpoints.", 1000, min=1)] = None,
    log_every: Annotated[int | None, _train_option("Steps between log lines.", 100, min=1)] = None,
    seed: Annotated[
        int | None, _train_option("Seed of the weights and the batch order.", 0, min=0, max=SEED_MAX)
    ] = None,
    device: Annotated[str | None, _train_option("cpu, cuda or cuda:N.", "cpu", callback=device_value)] = None,
    precision: Annotated[
        Precision | None, _train_option("bf16 autocast where fast (auto), or fp32/bf16.", "auto")
    ] = None,
    workers: Annotated[int | None, _train_option("DataLoader worker processes.", 0, min=0)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a run of another config in --out.")] = False,
    wait: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for another run into the same --out (0: refuse).")
    ] = 0.0,
) -> None:
    """Train a distance field (Pose-NDF's network, the tree's parent map) on a training set: distance, manifold and
    eikonal losses, AdamW, validation (MAE, Spearman, AUROC), atomic checkpoints; run it again to resume. Every
    config key is a flag of the same name (flags override the file). Several GPUs: `torchrun --nproc-per-node N -m
    amasskit prior train CONFIG`."""
    from ..prior import TrainConfig
    from ..prior import train as run_training

    flags = {
        "data": data,
        "out": out,
        "val_data": val_data,
        "clean": clean,
        "preset": preset,
        "activation": activation,
        "beta": beta,
        "dims": dims,
        "parents": parents,
        "steps": steps,
        "batch_size": batch_size,
        "manifold_batch": manifold_batch,
        "lr": lr,
        "lr_schedule": lr_schedule,
        "warmup": warmup,
        "weight_decay": weight_decay,
        "w_dist": w_dist,
        "w_manifold": w_manifold,
        "w_eikonal": w_eikonal,
        "w_gradient": w_gradient,
        "target": target,
        "val_every": val_every,
        "val_samples": val_samples,
        "checkpoint_every": checkpoint_every,
        "log_every": log_every,
        "seed": seed,
        "device": device,
        "precision": precision,
        "workers": workers,
    }
    with handle_errors():
        config = TrainConfig.from_mapping(config_mapping(config_file, flags))
    with handle_errors(), progress_bar() as bar:
        task = bar.add_task("training", total=config.steps)
        latest: dict[str, tuple[float, int]] = {}  # metric -> (value, the step it is from)

        def on_progress(step: int, total: int, metrics: Any) -> None:
            val_step, loss_step = int(metrics.get("val_step", step)), int(metrics.get("loss_step", step))
            for key, value in metrics.items():
                if key not in ("val_step", "loss_step"):
                    latest[key] = (value, val_step if key in VALIDATION_METRICS else loss_step)
            shown = ", ".join(f"{k} {metrics[k]:.4g}" for k in ("loss", "mae", "auroc") if k in metrics)
            bar.update(task, completed=step, total=total, description=f"training ({shown})")

        path = run_training(config, overwrite=overwrite, progress=on_progress, wait=wait)
    if not latest:  # trained already (a rerun): the figures the model recorded
        with handle_errors():
            from ..prior import load_model

            info = getattr(load_model(path), "info", None) or {}
        at = int(info.get("metrics_step") or info.get("step") or 0)
        latest = {
            k: (float(v), at) for k, v in (info.get("metrics") or {}).items() if k in VALIDATION_METRICS
        }
        console.print(f"{path}: trained already ({int(info.get('step') or 0):,} steps)", highlight=False)
        if not latest:
            return
    table = Table(title=f"trained: {path}")
    for col in ("metric", "value", "at step"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for key, (value, at) in latest.items():
        table.add_row(("val " if key in VALIDATION_METRICS else "train ") + key, f"{value:.5g}", f"{at:,}")
    console.print(table)


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
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of the starts.")] = 0,
    device: DeviceOption = "cpu",
) -> None:
    """Plausible poses: random starts projected onto the prior's manifold, written as a motion file of one frame a
    pose (poses, trans, ... as AMASS's SMPL+H files) with quat (N, 21, 4), prior_distance, converged, steps and
    evaluations; with --keep-steps, history_quat and history_distance: every step, for viewing."""
    import numpy as np

    from .._util.paths import user_path
    from ..errors import InvalidArgumentError
    from ..prior import load_prior, sample_poses, save_poses

    with handle_errors():
        model = load_prior(model_path, map_location=device)
        begin: Any = start
        if start not in ("haar", "noisy-identity"):
            try:
                begin = np.load(user_path(start), allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise InvalidArgumentError(
                    f"--start {start}: not haar, noisy-identity or a readable .npy ({exc})"
                ) from None
        with step_progress("projecting poses (stopped)") as on_progress:
            result = sample_poses(
                model,
                count,
                start=begin,
                seed=seed,
                tol=tol,
                max_steps=max_steps,
                keep_steps=keep_steps,
                progress=on_progress,
            )
        extra = (
            {}
            if result.history is None
            else {
                "history_quat": result.history.cpu().numpy(),
                "history_distance": result.history_distance.cpu().numpy(),  # type: ignore[union-attr]
            }
        )
        save_poses(
            out,
            result.quat.detach().cpu().numpy(),
            prior_distance=result.distance.cpu().numpy(),
            converged=result.converged.cpu().numpy(),
            steps=result.steps.cpu().numpy(),
            evaluations=result.evaluations.cpu().numpy(),
            made_from=f"{model_path} and --start {start}",
            **extra,
        )
    console.print(
        f"{out}: {len(result.quat):,} poses, {float(result.converged.float().mean()):.1%} under tol, "
        f"{float(result.evaluations.float().mean()):.1f} evaluations a pose"
    )


@prior_app.command("interpolate")
def interpolate(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="model.pt, or a released checkpoint.")],
    a: Annotated[
        str,
        typer.Argument(
            metavar="A",
            help="A motion file's pose: FILE#frame, or FILE for its first frame; or an .npy pose ((21, 3) rotation "
            "vectors or (21, 4) XYZW quaternions).",
        ),
    ],
    b: Annotated[
        str,
        typer.Argument(
            metavar="B",
            help="A motion file's pose: FILE#frame, or FILE for its first frame; or an .npy pose ((21, 3) rotation "
            "vectors or (21, 4) XYZW quaternions).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The npz to write.")] = Path("path.npz"),
    steps: Annotated[int, typer.Option(min=1, help="Steps at most.")] = 200,
    step_size: Annotated[float, typer.Option(help="Fraction of the way to B a step.")] = 0.1,
    device: DeviceOption = "cpu",
) -> None:
    """A path from pose A to pose B on the prior's manifold (projected after every step; ends at B)."""
    from ..prior import interpolate_poses, load_prior, read_pose, save_poses

    with handle_errors():
        model = load_prior(model_path, map_location=device)
        joints = int(model.config.joints)
        with step_progress("interpolating (steps)") as on_progress:
            path, distance = interpolate_poses(
                model,
                read_pose(a, joints=joints),
                read_pose(b, joints=joints),
                step_size=step_size,
                max_steps=steps,
                progress=on_progress,
            )
        save_poses(out, path, prior_distance=distance, made_from=f"{model_path}, {a} and {b}")
    console.print(
        f"{out}: {len(path)} poses from A to B, largest distance on the way {float(distance.max()):.4g}"
    )


#: marks the folder of an interrupted `prior evaluate`'s finished parts (``.OUT.parts`` beside the report)
#: the help panel of `prior evaluate`'s schedule options (defaults: the published protocol, as EvaluationConfig)
SCHEDULE = "Schedule (defaults: the published protocol)"


def _short_names(paths: list[str]) -> dict[str, str]:
    """Each path by its shortest tail that no other path shares (``run-a/model.pt`` and ``run-b/model.pt``, not
    ``model.pt`` twice)."""
    parts = {p: Path(p).parts for p in paths}
    out = {}
    for path, mine in parts.items():
        for n in range(1, len(mine) + 1):
            tail = mine[-n:]
            if all(other[-n:] != tail for q, other in parts.items() if q != path):
                break
        out[path] = str(Path(*tail))
    return out


def _numbers(text: str, option: str, kind: type = float) -> list[Any]:
    """Comma-separated numbers of an option. Raises: InvalidArgumentError: one that is not a number (naming it)."""
    from ..errors import InvalidArgumentError

    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidArgumentError(f"{option} {text!r}: need comma-separated numbers") from None


@prior_app.command("denoise")
def denoise(
    model_path: Annotated[
        str, typer.Argument(metavar="MODEL", help="model.pt, a released checkpoint, or none.")
    ],
    motion: Annotated[Path, typer.Argument(metavar="INPUT", help="AMASS or HuMoR-style motion npz.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The motion file to write.")] = Path(
        "denoised.npz"
    ),
    model_dir: Annotated[
        Path | None, typer.Option(help="Body models (SMPL+H); else the built-in skeleton.")
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds of the schedule (Pose-NDF's: 5).")] = 5,
    steps: Annotated[int, typer.Option(min=1, help="Adam steps a round.")] = 50,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam's rate.")] = 0.03,
    prior_weight: Annotated[float, typer.Option(min=0.0, help="Times the preset's prior weights.")] = 1.0,
    warmup: Annotated[int, typer.Option(min=0, help="Steps without the prior first.")] = 0,
    frames: Annotated[str | None, typer.Option(help="START:STOP frames only (default all).")] = None,
    device: DeviceOption = "cpu",
) -> None:
    """Denoise a motion (Pose-NDF's HuMoR-style schedule): its joints, by the body model or the built-in skeleton,
    are the observations; temporal, data, shape and prior terms; writes a motion file (per-frame prior distance)."""
    from ..prior import DenoiseSchedule, denoise_file, frame_window, load_field

    with handle_errors():
        window = frame_window(frames)
        field = load_field(model_path, device)
        schedule = DenoiseSchedule.posendf(rounds, steps, lr).scaled(prior=prior_weight)
        with step_progress("denoising (steps)") as on_progress:
            done = denoise_file(
                field,
                motion,
                out,
                model_dir=model_dir,
                device=device,
                frames=window,
                schedule=schedule,
                warmup=warmup,
                progress=on_progress,
            )
    fit = done.fit
    where = f"; prior distance {fit.distance.mean():.4g} on average" if field is not None else " (no prior)"
    console.print(
        f"{out}: {len(fit.pose_body)} frames denoised; joints moved {done.joint_change.mean() * 1000:.1f} mm on "
        f"average{where}"
    )


@prior_app.command("fit")
def fit(
    model_path: Annotated[
        str, typer.Argument(metavar="MODEL", help="model.pt, a released checkpoint, or none.")
    ],
    observations: Annotated[
        list[Path],
        typer.Argument(
            metavar="OBS...", help="(N, 22, 3) joints .npy (NaN: missing), or OpenPose JSON files."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The motion file to write.")] = Path("fit.npz"),
    intrinsics: Annotated[
        str | None, typer.Option(help="fx,fy,cx,cy (or f,cx,cy) of the camera: needed for OpenPose input.")
    ] = None,
    hide: Annotated[
        str | None, typer.Option(help="Joints to treat as missing, comma-separated indices.")
    ] = None,
    hypotheses: Annotated[int, typer.Option(min=1, help="Fits from different starts, best first.")] = 1,
    steps: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="Adam steps in all (default 3D joints 400; keypoints 600, spread over the camera stage and three "
            "prior weights in the proportions 100:150:150:200).",
        ),
    ] = None,
    prior_weight: Annotated[float, typer.Option(min=0.0, help="The prior's weight.")] = 1.0,
    person: Annotated[
        int | None, typer.Option(help="OpenPose: this person (default the most confident).")
    ] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="Body models (SMPL+H); else the built-in skeleton.")
    ] = None,
    gender: Annotated[str, typer.Option(help="Body model gender.")] = "neutral",
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of the starts.")] = 0,
    strict: Annotated[
        bool, typer.Option(help="Stop at the first unusable keypoint file (else skip it).")
    ] = False,
    device: DeviceOption = "cpu",
) -> None:
    """Fit a body to 3D joints (inverse kinematics; missing joints completed, several hypotheses) or to OpenPose
    BODY_25 keypoints with camera intrinsics (SMPLify-style). Writes a motion file: one frame per observation and
    hypothesis (observation-major), with `observation`, `hypothesis`, `fit_loss` and `prior_distance` (and
    `source`, the keypoint files fitted: an unusable one is reported and skipped, or stops the run with --strict)."""
    from ..errors import InvalidArgumentError
    from ..prior import body_kinematics, fit_joints_file, fit_keypoint_files, load_field

    with handle_errors():
        field = load_field(model_path, device)
        kinematics = body_kinematics(model_dir, gender, device)
        common: dict[str, Any] = {
            "kinematics": kinematics,
            "hypotheses": hypotheses,
            "seed": seed,
            "prior_weight": prior_weight,
            "steps": steps,
        }
        if all(p.suffix == ".json" for p in observations):
            if intrinsics is None:
                raise InvalidArgumentError("OpenPose input needs --intrinsics fx,fy,cx,cy")
            if hide:
                raise InvalidArgumentError(
                    "--hide is for 3D joints; OpenPose marks missing keypoints by confidence 0"
                )
            camera = _numbers(intrinsics, "--intrinsics")
            with step_progress("fitting keypoints (steps)") as on_progress:
                done = fit_keypoint_files(
                    field,
                    observations,
                    out,
                    intrinsics=camera,
                    person=person,
                    strict=strict,
                    progress=on_progress,
                    **common,
                )
            for _, why in done.skipped:
                console.print(f"[yellow]skipped[/yellow] {why}")
            summary = f"reprojection {done.fit.terms['reprojection_px']:.2f} px"
        elif len(observations) == 1 and observations[0].suffix == ".npy":
            hidden = _numbers(hide, "--hide", int) if hide else []
            if not all(0 <= j < 22 for j in hidden):
                raise InvalidArgumentError(f"--hide {hide}: joints are 0-21")
            with step_progress("fitting joints (steps)") as on_progress:
                done = fit_joints_file(
                    field, observations[0], out, hide=hidden, progress=on_progress, **common
                )
            summary = f"observed joints within {(done.joint_error or 0.0) * 1000:.1f} mm"
        else:
            raise InvalidArgumentError("OBS: one .npy of 3D joints, or OpenPose .json files")
    N, K = done.fit.loss.shape
    console.print(f"{out}: {N} observation(s) x {K} hypothes{'is' if K == 1 else 'es'}; {summary}")


@prior_app.command("evaluate")
def evaluate(
    models: Annotated[
        list[str],
        typer.Argument(metavar="MODEL...", help="model.pt, released checkpoints, and/or none (baseline)."),
    ],
    catalog: Annotated[
        Path | None, typer.Option(help="Catalog whose split holds the held-out files.")
    ] = None,
    split: Annotated[str, typer.Option(help="The held-out split.")] = "test",
    scheme: Annotated[str, typer.Option(help="The catalog's split scheme.")] = "amass-paper",
    motion: Annotated[
        list[Path] | None, typer.Option(help="Held-out motion files instead (repeatable).")
    ] = None,
    files: Annotated[int, typer.Option(min=1, help="Held-out files at most (spread over the split).")] = 20,
    train_poses: Annotated[Path | None, typer.Option(help="The prior's training pose set (dNN).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="A held-out training set (field MAE/Spearman/AUROC).")
    ] = None,
    samples: Annotated[int, typer.Option(min=6, help="Poses generated.")] = 500,
    completion: Annotated[int, typer.Option(min=0, help="Poses in the completion task.")] = 50,
    noise: Annotated[str, typer.Option(help="Joint-noise levels, mm, comma-separated.")] = "20,40,100",
    pose_noise: Annotated[
        str, typer.Option(help="Axis-angle noise levels, rad, comma-separated (Pose-NDF's; '' for none).")
    ] = "0.1,0.5",
    model_dir: Annotated[
        Path | None, typer.Option(help="Body models (SMPL+H): joints and v2v by the model.")
    ] = None,
    hypotheses: Annotated[
        int, typer.Option(min=1, help="Fits per pose in the completion task.", rich_help_panel=SCHEDULE)
    ] = 10,
    fit_steps: Annotated[
        int, typer.Option(min=1, help="Adam steps of a completion fit.", rich_help_panel=SCHEDULE)
    ] = 400,
    denoise_rounds: Annotated[
        int, typer.Option(min=1, help="Rounds of the denoising schedule.", rich_help_panel=SCHEDULE)
    ] = 5,
    denoise_steps: Annotated[
        int, typer.Option(min=1, help="Adam steps a denoising round.", rich_help_panel=SCHEDULE)
    ] = 50,
    warmup: Annotated[
        int,
        typer.Option(min=0, help="Prior-free warm-up steps of a denoising clip.", rich_help_panel=SCHEDULE),
    ] = 150,
    max_steps: Annotated[
        int,
        typer.Option(
            min=1, help="ManifoldProjection evaluations a generated pose.", rich_help_panel=SCHEDULE
        ),
    ] = 100,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of everything random.")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="The JSON report.")] = Path("prior_report.json"),
    plot: Annotated[Path | None, typer.Option(help="Also a PNG of the report (needs matplotlib).")] = None,
    device: DeviceOption = "cpu",
) -> None:
    """The published protocol (generation dNN/FID/APD/precision/recall, field fidelity, denoising MPJPE at each
    noise level on 60-frame clips, completion of a hidden leg over 10 hypotheses) for each MODEL and the no-prior
    baseline (`none`), printed as one table and written as JSON. Deterministic for a seed; run it again after an
    interruption and the models already evaluated are not evaluated again."""
    from ..errors import InvalidArgumentError
    from ..prior import EvaluationConfig, evaluate_priors, held_out_files, report_table

    with handle_errors():
        if motion:
            paths = list(motion)
        elif catalog is not None:
            paths = held_out_files(catalog, split=split, scheme=scheme, files=files)
        else:
            raise InvalidArgumentError(
                "held-out motion is needed: --catalog CAT --split test, or --motion FILE"
            )
        config = EvaluationConfig(
            samples=samples,
            completion=completion,
            noise_mm=tuple(_numbers(noise, "--noise")),
            seed=seed,
            pose_noise_rad=tuple(_numbers(pose_noise, "--pose-noise")),
            hypotheses=hypotheses,
            fit_steps=fit_steps,
            denoise_rounds=denoise_rounds,
            denoise_steps=denoise_steps,
            warmup=warmup,
            max_steps=max_steps,
        )
        with progress_bar() as bar:
            task = bar.add_task("evaluating", total=len(models))

            def on_progress(description: str, done: int, total: int) -> None:
                bar.update(task, description=description, completed=done, total=total)

            record = evaluate_priors(
                models,
                paths,
                out,
                config=config,
                model_dir=model_dir,
                train_poses=train_poses,
                data=data,
                device=device,
                progress=on_progress,
            )
        reports = record["reports"]
        if plot is not None:
            from ..viz import plot_prior_report

            plot_prior_report(reports, plot)
    clips, reference = record["inputs"]["clips"], record["inputs"]["reference_poses"]
    header, cells = report_table(reports)
    table = Table(title=f"{out}: {clips} clips, {reference} held-out poses")
    table.add_column("metric")
    names = _short_names([row[0] for row in cells if row[0] not in ("none", "noisy input")])
    for row in cells:  # one column per prior: reads at any terminal width
        table.add_column(
            {"none": "no prior", "noisy input": "noisy input"}.get(row[0]) or names[row[0]], justify="right"
        )
    for i, metric in enumerate(header[1:], start=1):
        table.add_row(metric, *(row[i] for row in cells))
    console.print(table)
    for reason in sorted({why for r in reports.values() for why in (r.get("skipped") or {}).values()}):
        console.print(f"[yellow]not run:[/] {reason}", highlight=False)
