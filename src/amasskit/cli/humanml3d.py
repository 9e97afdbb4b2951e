"""``amasskit humanml3d``: HumanML3D's files from a catalogued AMASS (SMPL+H) and the body models."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..choices import HumanML3DMode
from ._app import DaskAddress, JobsOption, app, console, err_console, handle_errors, step_progress


@app.command("humanml3d")
def humanml3d(
    catalog: Annotated[
        Path, typer.Option(help="Catalog of the SMPL+H release (database or scanned folder).")
    ],
    body_models: Annotated[
        Path | None, typer.Option(help="Folder of smplh/<gender>/model.npz (not needed with --check).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (HumanML3D's layout).")] = Path(
        "HumanML3D"
    ),
    fixed: Annotated[
        bool,
        typer.Option(
            "--fixed/--exact",
            help="--exact (default): the published data, quirks included (the int(fps / 20) stride, the female model "
            "unless gender == 'male'); --fixed: exactly 20 fps by time, each file's own gender (not the published data).",
        ),
    ] = False,
    humanact12: Annotated[
        Path | None,
        typer.Option(help="HumanAct12's joint files (<name>.npy), for its 1,191 rows (else skipped)."),
    ] = None,
    convert_smplx: Annotated[
        bool,
        typer.Option(
            "--convert-smplx",
            help="Rows found only in the SMPL-X release: convert their files to SMPL+H first (amasskit convert; the "
            "body-model folder needs the SMPL-X models and the transfer file); else they are listed as skipped.",
        ),
    ] = False,
    store: Annotated[
        bool,
        typer.Option(
            "--store",
            help="Also write amasskit stores of the result (OUT/stores/train|val|test) for the loaders.",
        ),
    ] = False,
    check: Annotated[bool, typer.Option("--check", help="Only check the index against the catalog.")] = False,
    jobs: JobsOption = None,
    dask: DaskAddress = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first file that fails.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Rebuild a folder built with other settings.")] = False,
) -> None:
    """HumanML3D (Guo et al. 2022) rebuilt from AMASS: every index row's joints, the start trims and crop, the
    mirror (M<id>), the 263-d features and new_joints, Mean/Std and the split lists. Every row that cannot be built is
    listed with why (before any work); resumable, parallel, on a Dask cluster with --dask."""
    from ..humanml3d import SKIP_REASONS, build_humanml3d, check_index

    mode: HumanML3DMode = "fixed" if fixed else "exact"
    with handle_errors():
        if check:
            planned = check_index(catalog, mode=mode, humanact12=humanact12)
            skipped = Counter(p.skip for p in planned if p.skip is not None)
            buildable = [p for p in planned if p.skip is None]
            truncated = sum(p.truncated for p in buildable)
            console.print(
                f"{len(buildable):,} of {len(planned):,} index rows can be built "
                f"({sum(p.count for p in buildable):,} frames; {truncated:,} crops cut short at their file's end)",
                highlight=False,
            )
            _print_skipped(skipped, SKIP_REASONS)
            return
        if body_models is None:
            raise typer.BadParameter("--body-models is needed to build (only --check goes without)")
        with step_progress("building HumanML3D (files)") as on_progress:
            report = build_humanml3d(
                catalog, body_models, out, mode=mode, humanact12=humanact12, convert_smplx=convert_smplx, store=store,
                workers=jobs, dask=dask,
                strict=strict, overwrite=overwrite, progress=on_progress,
            )  # fmt: skip
    console.print(
        f"{report.out}: {len(report.written):,} motions built, {len(report.kept):,} kept from an earlier run "
        f"({report.motions:,} in all, each with its mirror: {report.frames:,} frames, {report.hours:.2f} h at 20 fps); "
        f"{len(report.skipped):,} index rows skipped; {report.seconds:.1f} s",
        highlight=False,
    )
    if report.truncated:
        console.print(f"{len(report.truncated):,} crops ran past their file's end (cut short, as published)")
    _print_skipped(report.skipped_by_reason(), SKIP_REASONS)
    if any(reason.startswith("failed") for reason in report.skipped.values()):
        raise typer.Exit(1)


def _print_skipped(skipped: dict[str, int], reasons: dict[str, str]) -> None:
    if not skipped:
        return
    table = Table(title="index rows not built")
    table.add_column("rows", justify="right")
    table.add_column("why", overflow="fold")
    for code, count in sorted(skipped.items(), key=lambda item: -item[1]):
        table.add_row(f"{count:,}", f"{code}: {reasons.get(code, '')}".rstrip(": "))
    err_console.print(table)
