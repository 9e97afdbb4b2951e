"""``amasskit convert``: motion files, trees or pose lists from one SMPL-family model to another."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from ..choices import FitSchedule, Release
from ._app import (
    DaskAddress,
    app,
    console,
    device_value,
    err_console,
    handle_errors,
    progress_bar,
    step_progress,
)


def _shown(path: Path, root: Path) -> str:
    """A converted file as the table shows it: relative to the output folder (trees repeat file names)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


@app.command()
def convert(
    inputs: Annotated[list[Path], typer.Argument(help="Motion files or folders of an AMASS tree.")],
    to: Annotated[Release, typer.Option("--to", help="The target model.")] = "smplx",
    model_dir: Annotated[
        Path | None, typer.Option(help="Body models and transfer/ (default: $AMASSKIT_BODY_MODELS).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Folder for the converted tree (default: ./converted); with --pose-list, the .npz to write "
            "(default: INPUT's name with _<target>.npz, in the working directory; a folder: that name in it).",
        ),
    ] = None,
    gender: Annotated[
        Literal["same", "neutral"], typer.Option(help="Target gender: each file's own, or the neutral model.")
    ] = "same",
    betas: Annotated[
        Literal["fit", "zero"], typer.Option(help="Fit the target shape, or keep it at zero.")
    ] = "fit",
    schedule: Annotated[
        FitSchedule,
        typer.Option(
            help="accurate: within 0.05 mm of a fit run to convergence; fast: about 1.6x the frames a second, "
            "+0.2 mm (benchmarks/RESULTS.md)."
        ),
    ] = "accurate",
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Processes (default: all cores; one thread each)."),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.", callback=device_value)] = "cpu",
    dask: DaskAddress = None,
    pose_list: Annotated[
        bool,
        typer.Option(
            "--pose-list", help="INPUT is an npz of poses (PoseScript/PoseFix style); -o is an .npz."
        ),
    ] = False,
    strict: Annotated[bool, typer.Option(help="Stop at the first file that cannot be converted.")] = False,
    wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for another conversion into the same -o (0: refuse)."),
    ] = 0.0,
) -> None:
    """Convert SMPL+H motion to SMPL-X (or back) by fitting the target model to the source mesh mapped through the
    deformation transfer: per-frame errors in every output, resumable, atomic."""
    from ..convert import convert_files, convert_pose_list
    from ..errors import InvalidArgumentError

    with handle_errors():
        if pose_list:
            if len(inputs) != 1:
                raise typer.BadParameter("--pose-list takes one npz")
            name = f"{inputs[0].stem}_{to}.npz"
            if output is None or output.is_dir():
                output = (output or Path.cwd()) / name
            elif output.suffix.lower() != ".npz":
                raise InvalidArgumentError(
                    f"--pose-list writes an .npz file: give -o {output.name}.npz, or a folder"
                )
            with step_progress("converting poses") as on_progress:
                summary = convert_pose_list(inputs[0], output, to=to, model_dir=model_dir, device=device,
                                            progress=on_progress)  # fmt: skip
            console.print(
                f"{output}: {int(summary['poses'])} poses, mean vertex error {summary['vertex_error_mean_mm']:.2f} "
                f"mm (max {summary['vertex_error_max_mm']:.2f} mm)",
                highlight=False,
            )
            return
        output = output or Path.cwd() / "converted"
        with progress_bar() as bar:
            task = bar.add_task("converting files", total=None)
            report = convert_files(
                inputs, output, to=to, model_dir=model_dir, gender=gender,
                fit_betas=betas == "fit", device=device, schedule=schedule, workers=jobs,
                dask=dask, strict=strict, wait=wait,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
    table = Table(title=f"converted to {to} in {output}")
    for col in ("file", "frames", "mean mm", "max mm", "hands mm", "joints mm"):
        table.add_column(col, justify="left" if col == "file" else "right", overflow="fold")
    for path, s in report.files.items():
        table.add_row(_shown(Path(path), output), f"{int(s['frames'])}", f"{s['vertex_error_mean_mm']:.2f}",
                      f"{s['vertex_error_max_mm']:.2f}", f"{s.get('hands_error_mean_mm', 0.0):.2f}",
                      f"{s['joint_error_mean_mm']:.2f}")  # fmt: skip
    console.print(table)
    console.print(
        f"{len(report.written)} written, {len(report.skipped)} already done, {len(report.problems)} problems; "
        f"{report.seconds:.1f} s; report: {output / 'convert_report.json'}",
        highlight=False,
    )
    for path, error in report.problems:
        err_console.print(f"  {path}: {error}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)
