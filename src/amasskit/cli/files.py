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


@app.command()
def info(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Motion files, folders to search for *.npz, or anything amasskit wrote."),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (one object per file) instead of a table.")
    ] = False,
    full: Annotated[
        bool,
        typer.Option("--full", help="Also read and validate every array (NaN, shapes), not only the header."),
    ] = False,
) -> None:
    """What a file or folder holds. An AMASS file: release, frames, fps, duration, gender, betas, DMPLs (headers
    only unless --full; shape.npz and *_stagei.npz named as such; bad files give a typed error). Anything amasskit
    wrote: a store or pose set, a folder of them, a training set, a prior run or model, a conversion or pose list,
    an evaluation report, a catalog, an unpack target."""
    from ..io import read, read_header
    from ..outputs import describe_output

    results: list[dict[str, Any]] = []
    failures = 0

    def motion(path: Path) -> None:
        nonlocal failures
        try:
            header = read_header(path)
            if full:
                read(path)
            results.append(header.to_dict())
        except AmassFileError as exc:
            described = describe_output(path)  # a pose list, say: not a motion file, but amasskit's
            if described is not None:
                results.append(described.to_dict())
            elif isinstance(exc, NotMotionFileError):
                results.append({"path": str(path), "kind": exc.kind, "motion": False})
            else:
                failures += 1
                results.append({"path": str(path), "error": type(exc).__name__, "message": exc.reason})

    for path in paths:
        described = None if path.suffix.lower() == ".npz" else describe_output(path)
        if described is not None:
            results.append(described.to_dict())
        if path.is_dir():
            found = sorted(path.rglob("*.npz"))
            for file in found:
                motion(file)
            if not found and described is None:
                failures += 1
                results.append({"path": str(path), "error": "NothingHere",
                                "message": "no motion files (*.npz) and nothing amasskit wrote"})  # fmt: skip
        elif described is None:
            if path.suffix.lower() == ".npz" or not path.exists():
                motion(path)
            else:
                failures += 1
                results.append({"path": str(path), "error": "UnknownFile",
                                "message": "not a motion file, nor anything amasskit writes"})  # fmt: skip
    if as_json:
        payload: Any = results[0] if len(results) == 1 else results
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        outputs = [r for r in results if "summary" in r]
        if outputs:
            found_table = Table(show_lines=False)
            found_table.add_column("path", overflow="fold", min_width=24, ratio=1)
            found_table.add_column("what it is", overflow="fold", ratio=2)
            for r in outputs:
                found_table.add_row(r["path"], r["summary"])
            console.print(found_table)
        table = Table(show_lines=False)
        for col in ("file", "model", "frames", "fps", "seconds", "gender", "betas", "dmpls"):
            right = col in ("frames", "fps", "seconds", "betas")
            if col == "file":
                table.add_column(col, overflow="fold", min_width=24, ratio=1)
            else:
                table.add_column(col, justify="right" if right else "left")
        for r in results:
            if "error" in r or "summary" in r:
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
