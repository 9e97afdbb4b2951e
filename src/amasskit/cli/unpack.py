"""``amasskit unpack``: release archives to a verified tree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..choices import Decompressor
from ._app import app, console, err_console, handle_errors, progress_bar


@app.command()
def unpack(
    archives: Annotated[list[Path], typer.Argument(help="Release archives (<Dataset>.tar.bz2).")],
    to: Annotated[Path, typer.Option("--to", help="Target folder.")],
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Archives at once (default: all cores).")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Check each folder against the release checksums.")
    ] = False,
    checksums: Annotated[
        Path | None,
        typer.Option(help="Checksum table (JSON, release format) instead of the AMASS release's."),
    ] = None,
    decompressor: Annotated[
        Decompressor, typer.Option(help="auto: lbzip2 or pbzip2 when installed, else Python's bz2.")
    ] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Unpack again archives already unpacked.")] = False,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace folders at the target that amasskit did not unpack (refused otherwise)."),
    ] = False,
    max_ratio: Annotated[
        float, typer.Option(min=1, help="Refuse an archive that unpacks to more than this times its size.")
    ] = 100.0,
    max_bytes: Annotated[
        int, typer.Option(min=1, help="Refuse an archive that unpacks to more than this many bytes.")
    ] = 1 << 40,
    wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for another unpack into the same target (0: refuse)."),
    ] = 0.0,
) -> None:
    """Unpack AMASS archives in parallel, safely (hostile members refused), atomically and resumably; with --verify,
    against the release checksums. A bad archive is reported and the rest carry on; the exit code is 1 if any
    failed or mismatched."""
    from ..archives import unpack_archives

    sizes = [p.stat().st_size if p.is_file() else 0 for p in archives]
    with handle_errors(), progress_bar() as bar:
        overall = bar.add_task("all archives", total=sum(sizes) or None)
        tasks = [
            bar.add_task(f"  {p.name}", total=size or None) for p, size in zip(archives, sizes, strict=True)
        ]
        seen = [0] * len(archives)

        def on_progress(index: int, done: int) -> None:
            bar.update(tasks[index], completed=done)
            bar.advance(overall, done - seen[index])
            seen[index] = done

        report = unpack_archives(
            archives,
            to,
            workers=jobs,
            verify=verify,
            checksums=checksums,
            decompressor=decompressor,
            force=force,
            progress=on_progress,
            overwrite=overwrite,
            max_ratio=max_ratio,
            max_bytes=max_bytes,
            wait=wait,
        )
    table = Table(title=f"unpacked into {report.target}")
    for col in ("archive", "status", "folders", "files", "MiB", "verified", "seconds"):
        table.add_column(col, justify="right" if col in ("files", "MiB", "seconds") else "left")
    for r in report.results:
        verified = {True: "[green]yes[/]", False: "[red]MISMATCH[/]", None: "unverified" if verify else "-"}[
            r.verified
        ]
        status = f"[red]{r.status}[/]" if r.status == "failed" else r.status
        table.add_row(
            Path(r.archive).name,
            status,
            ", ".join(r.folders),
            str(r.files),
            f"{r.bytes / 2**20:.1f}",
            verified,
            f"{r.seconds:.1f}",
        )
    console.print(table)
    # each failure was logged with its error as it happened: here only what to do about them
    mismatched = [r for r in report.results if r.verified is False]
    if mismatched:
        tables = sorted({str(Path(r.archive).parent / "checksums.json") for r in mismatched
                         if (Path(r.archive).parent / "checksums.json").is_file()})  # fmt: skip
        against = (
            f"the table in {checksums}" if checksums is not None else "the AMASS release's checksum table"
        )
        hint = (f"; archives written by `amasskit synth --archives` have their own table: --checksums {tables[0]}"
                if tables and checksums is None else "")  # fmt: skip
        err_console.print(f"{len(mismatched)} archive(s) do not match {against}{hint}", highlight=False)
    failed = len(report.failed) - len(mismatched)
    if failed > 0:
        err_console.print(
            f"{failed} archive(s) failed (errors above); the others are unpacked", highlight=False
        )
    if not report.ok:
        raise typer.Exit(1)
