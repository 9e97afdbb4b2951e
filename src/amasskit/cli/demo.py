"""``amasskit demo``: the main job on a built-in synthetic default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..choices import Release
from ._app import SEED_MAX, app, console, handle_errors, progress_bar
from .catalog import print_catalog_stats


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo's files.")] = Path(
        "amasskit-demo"
    ),
    files: Annotated[int, typer.Option("--files", "-n", min=1, help="Number of motion files.")] = 38,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed.")] = 0,
    release: Annotated[Release, typer.Option(help="Release layout.")] = "smplh",
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Processes for each parallel stage.")] = 2,
) -> None:
    """amasskit's main job on a built-in synthetic default (no AMASS download): synthesise release archives, unpack
    them (verified), catalog, split, read every file back, and print the statistics."""
    from ..demo import DEMO_SPLIT, run_demo

    labels = {
        "synth": "synthesising frames",
        "unpack": "unpacking archives (bytes)",
        "catalog": "cataloguing",
        "read": "reading every file",
        "prepare": "preparing stores",
        "convert": "converting files",
    }
    with handle_errors(), progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels[stage], total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        report = run_demo(out, files=files, seed=seed, release=release, workers=jobs, progress=on_progress)

    unpacked = report.unpack.results
    verified = sum(1 for r in unpacked if r.verified)
    console.print(
        f"unpacked {len(unpacked)} archives into {report.unpack.target} ({verified} verified against "
        f"{report.synth.root / 'archives' / 'checksums.json'}); catalog: {report.scan.db}",
        highlight=False,
    )
    with handle_errors():
        from ..catalog import Catalog

        with Catalog.open(report.scan.db) as cat:
            print_catalog_stats(cat)
    counts = ", ".join(f"{k} {v}" for k, v in report.split_counts.items())
    left = ", ".join(f"{d} ({n})" for d, n in report.split.unallocated.items()) or "none"
    console.print(f"split {DEMO_SPLIT}: {counts}; unallocated: {left}", highlight=False)
    stores = ", ".join(
        f"{s} {report.prepared.sequences[s]} sequences / {report.prepared.frames[s]:,} frames"
        for s in report.prepared.stores
    )
    console.print(
        f"prepared stores (30 fps, middle 80%, + mirrored) in {root_of(report)}: {stores}; "
        f"experiment {report.prepared.experiment_id}",
        highlight=False,
    )
    if report.loading is not None:
        ld = report.loading
        shapes = ", ".join(
            f"{k} {tuple(v)}" for k, v in ld.shapes.items() if k in ("pose_body", "trans", "betas")
        )
        console.print(
            f"loaded {ld.batches} batches of {ld.batch_size} x {ld.clip_length}-frame clips from {ld.store} "
            f"(shuffled, amasskit.data.Loader; {shapes}): {ld.frames_per_second:,.0f} frames/s",
            highlight=False,
        )
    if report.preview is not None:
        console.print(f"preview video (built-in skeleton): {report.preview}", highlight=False)
    if report.converted:
        frames = sum(s["frames"] for s in report.converted.values())
        mean = sum(s["vertex_error_mean_mm"] * s["frames"] for s in report.converted.values()) / max(
            frames, 1
        )
        console.print(
            f"converted the {len(report.converted)} shortest files ({int(frames)} frames) to "
            f"{report.converted_to} with synthetic body models: mean vertex error {mean:.2f} mm, every frame's "
            f"error in its file: {', '.join(report.converted)}",
            highlight=False,
        )
    times = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    console.print(
        f"{report.files} motion files read back, {len(report.problems)} problems. {times}. "
        f"Sequence lengths from: {report.synth.lengths_source}.",
        highlight=False,
    )
    if not report.ok:
        raise typer.Exit(1)


def root_of(report: Any) -> Path:
    stores = list(report.prepared.stores.values())
    return stores[0].parent if stores else Path(".")
