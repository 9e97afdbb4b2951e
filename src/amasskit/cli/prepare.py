"""``amasskit prepare``: the catalog to one store per split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ._app import (
    SEED_MAX,
    CatalogOption,
    DaskAddress,
    DatasetsOption,
    GenderOption,
    JobsOption,
    MinDurationOption,
    ModelOption,
    SplitsOption,
    app,
    config_mapping,
    console,
    err_console,
    handle_errors,
    progress_bar,
)


@app.command()
def prepare(
    config_file: Annotated[
        Path | None, typer.Argument(metavar="[CONFIG.yaml]", help="YAML or JSON config.")
    ] = None,
    catalog: CatalogOption = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the stores (one per split).")] = None,
    scheme: Annotated[
        str | None, typer.Option(help="Recorded split scheme; none (or leave it out): one store 'all'.")
    ] = None,
    split: SplitsOption = None,
    dataset: DatasetsOption = None,
    gender: GenderOption = None,
    model: ModelOption = None,
    min_duration: MinDurationOption = None,
    fps: Annotated[float | None, typer.Option(help="Resample to this rate, by time.")] = None,
    trim_keep: Annotated[
        float | None, typer.Option(help="Keep the middle fraction (0.8 as the AMASS tools).")
    ] = None,
    trim_seconds: Annotated[
        str | None,
        typer.Option(
            metavar="START,END", help="Cut these seconds from the start and the end (not with --trim-keep)."
        ),
    ] = None,
    min_frames: Annotated[
        int | None, typer.Option(help="Drop sequences shorter than this after processing.")
    ] = None,
    canonicalise: Annotated[bool | None, typer.Option(help="Start at the origin facing +Y.")] = None,
    rotations: Annotated[int | None, typer.Option(help="Augmented copies turned about the vertical.")] = None,
    mirror: Annotated[bool | None, typer.Option(help="Add mirrored copies.")] = None,
    noise: Annotated[float | None, typer.Option(help="Pose noise (rad) on augmented copies.")] = None,
    frame_fraction: Annotated[
        float | None, typer.Option(help="Frame-sampling mode: keep this fraction.")
    ] = None,
    rotation: Annotated[str | None, typer.Option(help="rotvec, quat (XYZW), rotmat or 6d.")] = None,
    dtype: Annotated[str | None, typer.Option(help="float32 or float64.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, max=SEED_MAX, help="Seed.")] = None,
    jobs: JobsOption = None,
    strict: Annotated[bool | None, typer.Option(help="Stop at the first unreadable file.")] = None,
    name: Annotated[
        str | None, typer.Option(help="Experiment name (default: a hash of config and inputs).")
    ] = None,
    body_models: Annotated[
        Path | None,
        typer.Option(help="Body-model folder: the real pelvis offset, and a joints field in the store."),
    ] = None,
    joints: Annotated[
        bool | None, typer.Option(help="Store joint positions (default: when a body model is given).")
    ] = None,
    dask: DaskAddress = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace stores of other experiments (never folders amasskit did not write).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Check everything and print what would be done; write nothing.")
    ] = False,
    wait: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for another prepare into the same out (0: refuse).")
    ] = 0.0,
) -> None:
    """Select from the catalog, resample, trim, canonicalise, augment and pack into one memory-mappable store per
    split. Deterministic for a config and its inputs; a killed run resumes where it stopped."""
    from ..prepare import PrepareConfig, plan_prepare
    from ..prepare import prepare as run_prepare

    flags: dict[str, Any] = {"catalog": catalog, "out": out, "scheme": scheme, "splits": split, "datasets": dataset,
             "gender": gender, "model": model, "min_duration": min_duration, "fps": fps, "trim_keep": trim_keep,
             "min_frames": min_frames, "canonicalise": canonicalise, "rotations": rotations, "mirror": mirror,
             "noise": noise, "frame_fraction": frame_fraction, "rotation": rotation, "dtype": dtype, "seed": seed,
             "workers": jobs, "strict": strict, "name": name, "body_models": body_models,
             "joints": joints, "dask": dask}  # fmt: skip
    with handle_errors():
        if trim_seconds is not None:
            from ..errors import ConfigError

            try:
                flags["trim_seconds"] = [float(v) for v in trim_seconds.split(",")]
            except ValueError:
                raise ConfigError(
                    f"--trim-seconds {trim_seconds!r}: need START,END seconds", key="trim_seconds"
                ) from None
        config = PrepareConfig.from_mapping(config_mapping(config_file, flags))
        if dry_run:
            _print_plan(plan_prepare(config, overwrite=overwrite))
            return
    with handle_errors(), progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def on_progress(split_name: str, done: int, total: int) -> None:
            if split_name not in tasks:
                tasks[split_name] = bar.add_task(f"preparing {split_name}", total=total)
            bar.update(tasks[split_name], completed=done)

        report = run_prepare(config, overwrite=overwrite, wait=wait, progress=on_progress)
    table = Table(title=f"prepared stores, experiment {report.experiment_id}")
    for col in ("split", "store", "sequences", "frames"):
        table.add_column(col, justify="right" if col in ("sequences", "frames") else "left", overflow="fold")
    for split_name, path in report.stores.items():
        table.add_row(
            split_name, str(path), f"{report.sequences[split_name]:,}", f"{report.frames[split_name]:,}"
        )
    console.print(table)
    for problem_path, error in report.problems:
        err_console.print(f"[yellow]skipped[/] {problem_path}: {error}", highlight=False)
    for split_name in report.empty:
        err_console.print(f"[bold red]no store[/] for split {split_name}: no selected file gave a sequence",
                          highlight=False)  # fmt: skip
    if report.empty:
        raise typer.Exit(1)


def _print_plan(plan: Any) -> None:
    """``prepare --dry-run``: what would be done, split by split."""
    table = Table(title=f"prepare would make experiment {plan.experiment_id} ({plan.model}) in {plan.out}")
    for col in ("split", "store", "action", "inputs", "already done", "to process"):
        table.add_column(col, justify="right" if col in ("inputs", "already done", "to process") else "left")
    for name, split_plan in plan.splits.items():
        todo = 0 if split_plan.action == "keep" else len(split_plan.inputs) - split_plan.done
        table.add_row(name, str(split_plan.target), split_plan.action, f"{len(split_plan.inputs):,}",
                      f"{split_plan.done:,}", f"{todo:,}")  # fmt: skip
    console.print(table)
    for name in plan.empty:
        console.print(f"split {name}: the selection holds no file of it; no store", highlight=False)
    if plan.stale:
        console.print(
            f"{plan.stale} results of an earlier run no longer match and would be deleted", highlight=False
        )
    console.print(f"dry run: nothing written ({plan.to_process:,} files to process)", highlight=False)
