"""``amasskit info``: what motion files hold."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import AmassFileError, NotMotionFileError
from ._app import app, console, err_console


def _expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        out.extend(sorted(path.rglob("*.npz")) if path.is_dir() else [path])
    return out


@app.command()
def info(
    paths: Annotated[list[Path], typer.Argument(help="Motion files, or folders to search for *.npz.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (one object per file) instead of a table.")
    ] = False,
    full: Annotated[
        bool,
        typer.Option("--full", help="Also read and validate every array (NaN, shapes), not only the header."),
    ] = False,
) -> None:
    """What an AMASS file holds: release, frames, fps, duration, gender, betas, DMPLs. Reads headers only unless
    --full. Non-motion files (shape.npz, *_stagei.npz) are named as such; bad files give a typed error."""
    from ..io import read, read_header

    results: list[dict[str, Any]] = []
    failures = 0
    for path in _expand(paths):
        try:
            header = read_header(path)
            if full:
                read(path)
            results.append(header.to_dict())
        except NotMotionFileError as exc:
            results.append({"path": str(path), "kind": exc.kind, "motion": False})
        except AmassFileError as exc:
            failures += 1
            results.append({"path": str(path), "error": type(exc).__name__, "message": exc.reason})
    if as_json:
        payload: Any = results[0] if len(results) == 1 else results
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        table = Table(show_lines=False)
        for col in ("file", "model", "frames", "fps", "seconds", "gender", "betas", "dmpls"):
            right = col in ("frames", "fps", "seconds", "betas")
            if col == "file":
                table.add_column(col, overflow="fold", min_width=24, ratio=1)
            else:
                table.add_column(col, justify="right" if right else "left")
        for r in results:
            if "error" in r:
                continue
            if r.get("motion") is False:
                table.add_row(r["path"], f"[dim]{r['kind']}[/]", *["[dim]-[/]"] * 4, "[dim]not motion[/]", "")
                continue
            table.add_row(
                r["path"],
                r["model"],
                str(r["num_frames"]),
                f"{r['fps']:.10g}",
                f"{r['duration']:.2f}",
                r["gender"],
                str(r["num_betas"]),
                "yes" if r["has_dmpls"] else "no",
            )
        if table.row_count:
            console.print(table)
        for r in results:
            if "error" in r:
                err_console.print(f"{r['path']}: [bold red]{r['error']}[/]: {r['message']}", highlight=False)
    if failures:
        raise typer.Exit(1)
