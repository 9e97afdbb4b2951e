"""``amasskit synth`` and ``amasskit synth-models``: synthetic AMASS trees and body-model files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..choices import LengthMode, Release
from ._app import SEED_MAX, app, console, handle_errors, progress_bar


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to create for the synthetic tree.")],
    files: Annotated[int, typer.Option("--files", "-n", min=1, help="Number of motion files.")] = 100,
    release: Annotated[
        Release, typer.Option(help="Release layout: smplh (*_poses.npz) or smplx (*_stageii.npz).")
    ] = "smplh",
    lengths: Annotated[
        LengthMode, typer.Option(help="real: the release's length distribution; short: 30-180 frames (fast).")
    ] = "real",
    archives: Annotated[
        bool, typer.Option("--archives", help="Also pack <Dataset>.tar.bz2 per sub-dataset.")
    ] = False,
    seed: Annotated[
        int, typer.Option(min=0, max=SEED_MAX, help="Seed; the same seed gives the same files.")
    ] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Processes writing files.")] = 1,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
    lengths_table: Annotated[
        Path | None, typer.Option(help="The real per-file lengths table (npz_file_lens.json.gz).")
    ] = None,
) -> None:
    """Write a synthetic AMASS tree (labelled synthetic in every file): the release's layout, keys, dtypes, gender
    encodings and frame rates, with plausible walking and turning motion."""
    from ..synth import synth_tree

    with handle_errors(), progress_bar() as bar:
        task = bar.add_task("synthesising frames", total=None)
        summary = synth_tree(
            out,
            files=files,
            release=release,
            lengths=lengths,
            archives=archives,
            seed=seed,
            workers=jobs,
            overwrite=overwrite,
            lengths_table=lengths_table,
            progress=lambda n: bar.advance(task, n),
        )
    _print_synth(summary)


def _print_synth(summary: Any) -> None:
    table = Table(title=f"synthetic AMASS ({summary.release}) in {summary.root}")
    for col in ("sub-dataset", "files", "frames", "hours"):
        table.add_column(col, justify="left" if col == "sub-dataset" else "right")
    for name, d in summary.datasets.items():
        table.add_row(name, str(int(d["files"])), f"{int(d['frames']):,}", f"{d['seconds'] / 3600:.3f}")
    table.add_row("[bold]total[/]", str(summary.files), f"{summary.frames:,}", f"{summary.hours:.3f}")
    console.print(table)
    console.print(f"lengths from: {summary.lengths_source}; seed {summary.seed}")
    if summary.archives:
        folder = summary.root / "archives"
        console.print(
            f"{len(summary.archives)} archives in {folder}, with their checksum table {folder / 'checksums.json'} "
            f"(unpack them verified: amasskit unpack {folder}/*.tar.bz2 --to DIR --verify --checksums "
            f"{folder / 'checksums.json'})",
            highlight=False,
        )


@app.command("synth-models")
def synth_models(
    out: Annotated[
        Path, typer.Argument(help="Folder for the model files (the layout AMASSKIT_BODY_MODELS expects).")
    ],
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed.")] = 0,
    hand_pca: Annotated[
        bool,
        typer.Option("--hand-pca", help="Add hand-PCA keys to SMPL+H models (the smplx package needs them)."),
    ] = False,
) -> None:
    """Write synthetic body-model files with the real keys and shapes (smplh/{gender}/model.npz,
    dmpls/{gender}/model.npz, smplx/SMPLX_{GENDER}.npz) on amasskit's own humanoid. For tests and demos: no licensed
    data is used or needed."""
    from ..synth import write_body_models

    with handle_errors():
        written = write_body_models(out, seed=seed, hand_pca=hand_pca)
    for path in written:
        console.print(str(path), highlight=False)
