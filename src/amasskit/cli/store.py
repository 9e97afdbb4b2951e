"""``amasskit store stats|export``: what a store holds, and exporting it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..choices import ExportFormat
from ._app import AmassTyper, app, console, handle_errors, progress_bar

store_app = AmassTyper(
    no_args_is_help=True,
    help="A prepared store: `store stats STORE` summarises it; `store export` converts it.",
)
app.add_typer(store_app, name="store")


@store_app.command("stats")
def store_stats_command(
    path: Annotated[Path, typer.Argument(help="A store folder (one split, with manifest.json).")],
    plot: Annotated[
        Path | None, typer.Option(help="Also draw the statistics to this image (.png, .svg, .pdf).")
    ] = None,
) -> None:
    """Summarise a prepared store: sequences, frames, hours, frame rates, augmentation counts, fields and their
    value ranges: `amasskit store stats STORE [--plot F]`."""
    import numpy as np

    from ..store import Store, store_stats
    from ..viz import plot_store

    with handle_errors():
        from ..errors import StoreError
        from ..outputs import describe_output

        try:
            opened = Store(path)
        except StoreError:
            other = describe_output(path)
            if other is None:
                raise
            raise StoreError(path, f"not a store but {other.summary}; `amasskit info {path}` says what any amasskit "
                             "output holds") from None  # fmt: skip
        stats = store_stats(opened)
        console.print(
            f"{path}: {stats.sequences:,} sequences, {stats.frames:,} frames, {stats.seconds / 3600:.2f} hours; "
            + ", ".join(f"{f:g} fps ({n})" for f, n in stats.fps.items())
            + "; augmentation: " + ", ".join(f"{k} {n}" for k, n in stats.augmentation.items()),
            highlight=False,
        )  # fmt: skip
        table = Table(title=f"fields (ranges over {stats.sampled:,} frames)")
        for col in ("field", "per frame", "dtype", "min", "p1", "median", "p99", "max"):
            table.add_column(col, justify="left" if col in ("field", "per frame", "dtype") else "right")
        for name, (shape, dtype) in stats.fields.items():
            r = stats.ranges[name]
            table.add_row(name, str(shape), dtype, *(f"{v:.3f}" for v in (r[:, 0].min(), r[:, 1].min(),
                          float(np.median(r[:, 2])), r[:, 3].max(), r[:, 4].max())))  # fmt: skip
        console.print(table)
        if plot is not None:
            console.print(f"plot: {plot_store(opened, plot, stats=stats)}", highlight=False)


@store_app.command("export")
@app.command("export", hidden=True)  # the form before `store export`, kept
def export(
    store: Annotated[Path, typer.Argument(help="A prepared store (one split's folder).")],
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="hdf5, pt or npz.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="A .h5 file (hdf5) or a folder (pt, npz).")],
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing output (whole, once complete).")
    ] = False,
) -> None:
    """Export a store: chunked compressed HDF5 (with pose_matrot), PyTorch .pt per field, or npz per sequence.
    Written beside the output and renamed into place when complete."""
    from ..store import export_store

    with handle_errors(), progress_bar() as bar:
        task = bar.add_task(f"exporting {format}", total=None)
        try:
            export_store(store, output, format=format, overwrite=overwrite,
                         progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
        except ImportError as exc:
            raise typer.BadParameter(str(exc)) from None
    console.print(f"{output}: {format} export of {store}", highlight=False)
