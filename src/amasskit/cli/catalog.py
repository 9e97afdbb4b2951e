"""``amasskit catalog scan|stats`` and ``amasskit split``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from ..choices import HashKind
from ._app import AmassTyper, app, console, err_console, handle_errors, progress_bar

if TYPE_CHECKING:
    from ..catalog import SplReport


def _catalog_db(where: Path | None, db: Path | None) -> Path:
    from ..catalog import DEFAULT_DB_NAME

    if db is not None:
        return db
    if where is None:
        return Path(DEFAULT_DB_NAME)
    return where / DEFAULT_DB_NAME if where.is_dir() else where


class _ScanByDefault(TyperGroup):
    """``amasskit catalog DIR`` (the form before sub-commands) still scans DIR, with a note; ``catalog stats`` is
    always the statistics and ``catalog scan stats`` scans a folder named ``stats``."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            err_console.print(
                f"note: `amasskit catalog {args[0]}` is now `amasskit catalog scan {args[0]}`",
                highlight=False,
            )
            args = ["scan", *args]
        return super().resolve_command(ctx, args)


catalog_app = AmassTyper(
    cls=_ScanByDefault,
    no_args_is_help=True,
    help="The catalog: `catalog scan DIR` records every motion file in SQLite; `catalog stats` summarises it.",
)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("scan")
def catalog_scan(
    tree: Annotated[Path, typer.Argument(help="The AMASS tree to scan.")],
    db: Annotated[
        Path | None, typer.Option(help="Catalog database (default: TREE/amasskit-catalog.sqlite).")
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Reader processes (default: all cores).")
    ] = None,
    hash_kind: Annotated[
        HashKind, typer.Option("--hash", help="crc: from the zip directory (fast); md5: of every byte.")
    ] = "crc",
) -> None:
    """Scan a tree into an SQLite catalog: headers only, in parallel, incremental (a rescan reads only new or
    changed files), then print per-dataset statistics."""
    from ..catalog import Catalog, scan

    with handle_errors():
        with progress_bar() as bar:
            task = bar.add_task("reading headers", total=None)
            report = scan(
                tree,
                db,
                workers=jobs,
                hash_kind=hash_kind,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        console.print(
            f"{report.db}: {report.seen} npz files; {report.read} read ({report.added} added, {report.updated} "
            f"updated, {report.skipped} not motion, {report.problems} problems), {report.unchanged} unchanged, "
            f"{report.removed} removed; {report.seconds:.2f} s",
            highlight=False,
        )
        with Catalog.open(report.db) as cat:
            print_catalog_stats(cat)


@catalog_app.command("stats")
def catalog_stats(
    where: Annotated[
        Path | None, typer.Argument(help="The scanned folder or the catalog file (default: here).")
    ] = None,
    db: Annotated[Path | None, typer.Option(help="The catalog database, if not WHERE.")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Also draw the statistics to this image (.png, .svg, .pdf).")
    ] = None,
) -> None:
    """Per-sub-dataset statistics of a catalog: files, frames, hours, frame rates, genders; problems."""
    from ..catalog import Catalog

    with handle_errors(), Catalog.open(_catalog_db(where, db)) as cat:
        print_catalog_stats(cat)
        if plot is not None:
            from ..viz import plot_catalog

            written = plot_catalog(cat.records(), plot, title=cat.root.name)
            console.print(f"plot: {written}", highlight=False)


def print_catalog_stats(cat: Any) -> None:
    stats = cat.stats()
    table = Table(title=f"catalog of {cat.root}")
    for col in ("sub-dataset", "files", "frames", "hours", "fps", "genders"):
        table.add_column(col, justify="right" if col in ("files", "frames", "hours") else "left")
    for d in stats:
        fps = ", ".join(f"{f:g}" + (f" ({n})" if len(d.fps) > 1 else "") for f, n in d.fps.items())
        genders = ", ".join(f"{g} {n}" for g, n in d.genders.items())
        table.add_row(d.dataset, f"{d.files:,}", f"{d.frames:,}", f"{d.hours:.2f}", fps, genders)
    table.add_row(
        "[bold]total[/]",
        f"{sum(d.files for d in stats):,}",
        f"{sum(d.frames for d in stats):,}",
        f"{sum(d.hours for d in stats):.2f}",
        "",
        "",
    )
    console.print(table)
    problems = cat.problems()
    if problems:
        err_console.print(f"[yellow]{len(problems)} files failed to read:[/]")
        for p in problems[:20]:
            err_console.print(f"  {p.path}: {p.error}: {p.message}", highlight=False)
        if len(problems) > 20:
            err_console.print(f"  ... and {len(problems) - 20} more (Catalog.problems())")


@app.command()
def split(
    scheme: Annotated[
        str | None,
        typer.Argument(
            help="Built-in scheme (amass-paper, amass-paper-all, spl, spl-datasets) or a YAML/JSON scheme file."
        ),
    ] = None,
    db: Annotated[Path, typer.Option(help="The catalog (a database file or a scanned folder).")] = Path("."),
    link: Annotated[
        Path | None, typer.Option(help="Also materialise the split as a tree of symlinks here.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --link tree.")] = False,
    list_schemes: Annotated[bool, typer.Option("--list", help="List the built-in schemes and exit.")] = False,
    unmatched: Annotated[
        Path | None,
        typer.Option(
            help="spl: write the list names that matched no single file here (one a line, with why)."
        ),
    ] = None,
) -> None:
    """Record a split assignment in the catalog (no file moves) and report sub-datasets it leaves unallocated.
    `spl`: the SPL paper's file lists (shipped in amasskit) matched to the catalogued files, with a report of what
    matched per list and old collection. `spl-datasets`: llamass's form, the sub-datasets each list names (not the
    SPL split: its splits share files)."""
    from ..catalog import BUILTIN_SCHEMES, Catalog

    if list_schemes or scheme is None:
        for name, s in BUILTIN_SCHEMES.items():
            console.print(f"{name}: {s.definition.get('description', '')}", highlight=False)
        console.print(
            "spl: the SPL paper's train / vald / test file lists (Aksan et al. 2019), matched to the catalog's files",
            highlight=False,
        )
        console.print(
            "spl-datasets: llamass's form, every file of the sub-datasets each SPL list names (overlapping splits)",
            highlight=False,
        )
        return
    if unmatched is not None and scheme != "spl":
        raise typer.BadParameter("--unmatched is for the spl scheme", param_hint="--unmatched")
    with handle_errors(), Catalog.open(db) as cat:
        if scheme == "spl":
            assignment, report = cat.assign_spl()
            _print_spl_report(report, unmatched)
        else:
            assignment = cat.assign_split(scheme)
        name = assignment.scheme
        counts = cat.split_counts(name)
        table = Table(title=f"split {name} of {cat.root}")
        table.add_column("split")
        table.add_column("files", justify="right")
        table.add_column("hours", justify="right")
        for split_name, n in counts.items():
            hours = sum(r.duration for r in cat.records(split=split_name, scheme=name)) / 3600
            table.add_row(split_name, f"{n:,}", f"{hours:.2f}")
        console.print(table)
        if assignment.unallocated:
            left = ", ".join(f"{d} ({n})" for d, n in assignment.unallocated.items())
            err_console.print(f"[yellow]unallocated (in no split):[/] {left}", highlight=False)
        if assignment.also:
            shared: dict[str, int] = {}
            for path, more in assignment.also.items():
                key = " + ".join((assignment.splits[path], *more))
                shared[key] = shared.get(key, 0) + 1
            err_console.print(
                f"[yellow]the splits of {name} overlap:[/] {len(assignment.also):,} files are in more than one ("
                + ", ".join(f"{k}: {n:,}" for k, n in sorted(shared.items()))
                + "); results on its test split are not held out",
                highlight=False,
            )
        if link is not None:
            linked = cat.link_split(name, link, overwrite=overwrite)
            console.print(f"linked {sum(linked.values())} files under {link}", highlight=False)


def _print_spl_report(report: SplReport, unmatched: Path | None) -> None:
    """The SPL match per list and old collection; the names not matched to one file, to ``unmatched``."""
    table = Table(title="SPL lists matched to the catalog")
    for col in ("list", "collection", "names", "matched", "not found", "ambiguous", "not AMASS"):
        table.add_column(col, justify="left" if col in ("list", "collection") else "right")
    for list_name, rows in report.counts.items():
        for collection, row in sorted(rows.items()):
            table.add_row(list_name, collection, *(f"{row[k]:,}" for k in
                          ("names", "matched", "not_found", "ambiguous", "not_amass")))  # fmt: skip
    console.print(table)
    if not sum(report.assigned.values()):
        err_console.print("[yellow]no catalogued file matched an SPL list name[/] (the lists name files of AMASS's "
                          "ACCAD, BMLrub, CMU, Eyes, HDM05, HumanEva, MPI_Limits, SSM and Transitions)",
                          highlight=False)  # fmt: skip
    if report.conflicts:
        err_console.print(f"[yellow]{len(report.conflicts)} files claimed by two lists (left out):[/] "
                          + ", ".join(sorted(report.conflicts)[:5]), highlight=False)  # fmt: skip
    if report.ambiguous:
        err_console.print(f"[yellow]{len(report.ambiguous)} names match two or more files (left out)[/]")
    if unmatched is not None:
        from .._util.atomic import atomic_open
        from .._util.paths import user_path

        lines = [f"{lst}\t{name}\tnot found" for lst, name in report.not_found]
        lines += [f"{lst}\t{name}\tambiguous: {' | '.join(files)}" for lst, name, files in report.ambiguous]
        lines += [f"{lst}\t{name}\tnot part of AMASS" for lst, name in report.not_amass]
        with atomic_open(user_path(unmatched)) as fp:
            fp.write(("\n".join(lines) + "\n").encode())
        console.print(f"{len(lines)} unmatched names in {unmatched}", highlight=False)
