"""The ``amasskit`` command: a thin Typer layer. Every command calls one library function and formats its result.

Errors from amasskit are printed as ``ErrorType: message`` (no traceback; ``-v`` adds it) and give exit code 1.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import __version__
from ..errors import AmassFileError, AmassKitError, NonFiniteError, NotMotionFileError

app = typer.Typer(
    name="amasskit",
    help="From the AMASS motion-capture archives to training-ready data, fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"verbose": 0}


class Release(str, Enum):
    smplh = "smplh"
    smplx = "smplx"


class Lengths(str, Enum):
    real = "real"
    short = "short"


def _version(value: bool) -> None:
    if value:
        console.print(f"amasskit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only warnings and errors; no progress bars.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """From the AMASS motion-capture archives to training-ready data, fast."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO)
    _state["verbose"] = -1 if quiet else verbose
    handler = RichHandler(console=err_console, show_path=verbose >= 2, show_time=False, markup=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    logging.getLogger("amasskit").setLevel(level)


@contextmanager
def _errors() -> Iterator[None]:
    """Print amasskit's own errors as ``ErrorType: message`` and exit 1; anything else is a bug and keeps its
    traceback."""
    try:
        yield
    except (AmassKitError, FileExistsError, FileNotFoundError, NotADirectoryError) as exc:
        if _state["verbose"] > 0:
            err_console.print_exception()
        err_console.print(f"[bold red]{type(exc).__name__}[/]: {exc}", highlight=False)
        raise typer.Exit(1) from None


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=_state["verbose"] < 0 or not err_console.is_terminal,
    )


# ---------------------------------------------------------------------------------------------- info


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


# ---------------------------------------------------------------------------------------------- synth


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to create for the synthetic tree.")],
    files: Annotated[int, typer.Option("--files", "-n", min=1, help="Number of motion files.")] = 100,
    release: Annotated[
        Release, typer.Option(help="Release layout: smplh (*_poses.npz) or smplx (*_stageii.npz).")
    ] = (Release.smplh),
    lengths: Annotated[
        Lengths, typer.Option(help="real: the release's length distribution; short: 30-180 frames (fast).")
    ] = Lengths.real,
    archives: Annotated[
        bool, typer.Option("--archives", help="Also pack <Dataset>.tar.bz2 per sub-dataset.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same files.")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Processes writing files.")] = 1,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
    lengths_table: Annotated[
        Path | None, typer.Option(help="The real per-file lengths table (npz_file_lens.json.gz).")
    ] = None,
) -> None:
    """Write a synthetic AMASS tree (labelled synthetic in every file): the release's layout, keys, dtypes, gender
    encodings and frame rates, with plausible walking and turning motion."""
    from ..synth import synth_tree

    with _errors(), _progress() as bar:
        task = bar.add_task("synthesising frames", total=None)
        summary = synth_tree(
            out,
            files=files,
            release=release.value,
            lengths=lengths.value,
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
        console.print(f"{len(summary.archives)} archives in {summary.root / 'archives'}")


@app.command("synth-models")
def synth_models(
    out: Annotated[
        Path, typer.Argument(help="Folder for the model files (the layout AMASSKIT_BODY_MODELS expects).")
    ],
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    hand_pca: Annotated[
        bool,
        typer.Option("--hand-pca", help="Add hand-PCA keys to SMPL+H models (the smplx package needs them)."),
    ] = False,
) -> None:
    """Write synthetic body-model files with the real keys and shapes (smplh/{gender}/model.npz,
    dmpls/{gender}/model.npz, smplx/SMPLX_{GENDER}.npz) on amasskit's own humanoid. For tests and demos: no licensed
    data is used or needed."""
    from ..synth import write_body_models

    with _errors():
        written = write_body_models(out, seed=seed, hand_pca=hand_pca)
    for path in written:
        console.print(str(path), highlight=False)


# ---------------------------------------------------------------------------------------------- unpack


class DecompressorChoice(str, Enum):
    auto = "auto"
    python = "python"
    lbzip2 = "lbzip2"
    pbzip2 = "pbzip2"


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
        DecompressorChoice, typer.Option(help="auto: lbzip2 or pbzip2 when installed, else Python's bz2.")
    ] = DecompressorChoice.auto,
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
    with _errors(), _progress() as bar:
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
            decompressor=decompressor.value,
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
    for r in report.failed:
        err_console.print(f"[red]{r.error}[/]", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------- catalog


class HashChoice(str, Enum):
    crc = "crc"
    md5 = "md5"


def _catalog_db(where: Path | None, db: Path | None) -> Path:
    from ..catalog import DEFAULT_DB_NAME

    if db is not None:
        return db
    if where is None:
        return Path(DEFAULT_DB_NAME)
    return where / DEFAULT_DB_NAME if where.is_dir() else where


@app.command()
def catalog(
    target: Annotated[
        str, typer.Argument(metavar="DIR|stats", help="Tree to scan, or 'stats' to summarise.")
    ],
    where: Annotated[
        Path | None, typer.Argument(help="With 'stats': the scanned folder or the catalog file.")
    ] = None,
    db: Annotated[
        Path | None, typer.Option(help="Catalog database (default: DIR/amasskit-catalog.sqlite).")
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Reader processes (default: all cores).")
    ] = (None),
    hash_kind: Annotated[
        HashChoice, typer.Option("--hash", help="crc: from the zip directory (fast); md5: of every byte.")
    ] = HashChoice.crc,
    plot: Annotated[
        Path | None,
        typer.Option(help="With 'stats': also draw the statistics to this image (.png, .svg, .pdf)."),
    ] = None,
) -> None:
    """Scan a tree into an SQLite catalog (headers only, in parallel, incremental: a rescan reads only new or changed
    files), or print per-dataset statistics: `amasskit catalog DIR`, `amasskit catalog stats [DIR|DB] [--plot F]`."""
    from ..catalog import Catalog, scan

    with _errors():
        if target == "stats":
            with Catalog.open(_catalog_db(where, db)) as cat:
                _print_catalog_stats(cat)
                if plot is not None:
                    from ..viz import plot_catalog

                    written = plot_catalog(cat.records(), plot, title=cat.root.name)
                    console.print(f"plot: {written}", highlight=False)
            return
        if where is not None:
            raise typer.BadParameter(f"unexpected argument {where}; scan takes one folder")
        with _progress() as bar:
            task = bar.add_task("reading headers", total=None)
            report = scan(
                Path(target),
                db,
                workers=jobs,
                hash_kind=hash_kind.value,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        console.print(
            f"{report.db}: {report.seen} npz files; {report.read} read ({report.added} added, {report.updated} "
            f"updated, {report.skipped} not motion, {report.problems} problems), {report.unchanged} unchanged, "
            f"{report.removed} removed; {report.seconds:.2f} s",
            highlight=False,
        )
        with Catalog.open(report.db) as cat:
            _print_catalog_stats(cat)


def _print_catalog_stats(cat: Any) -> None:
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
        typer.Argument(help="Built-in scheme (amass-paper, amass-paper-all) or a YAML/JSON scheme file."),
    ] = None,
    db: Annotated[Path, typer.Option(help="The catalog (a database file or a scanned folder).")] = Path("."),
    link: Annotated[
        Path | None, typer.Option(help="Also materialise the split as a tree of symlinks here.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --link tree.")] = False,
    list_schemes: Annotated[bool, typer.Option("--list", help="List the built-in schemes and exit.")] = False,
) -> None:
    """Record a split assignment in the catalog (no file moves) and report sub-datasets it leaves unallocated."""
    from ..catalog import BUILTIN_SCHEMES, Catalog

    if list_schemes or scheme is None:
        for name, s in BUILTIN_SCHEMES.items():
            console.print(f"{name}: {s.definition.get('description', '')}", highlight=False)
        return
    with _errors(), Catalog.open(db) as cat:
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
        if link is not None:
            linked = cat.link_split(name, link, overwrite=overwrite)
            console.print(f"linked {sum(linked.values())} files under {link}", highlight=False)


# ---------------------------------------------------------------------------------------------- prepare


@app.command()
def prepare(
    config_file: Annotated[
        Path | None, typer.Argument(metavar="[CONFIG.yaml]", help="YAML or JSON config.")
    ] = None,
    catalog: Annotated[Path | None, typer.Option(help="Catalog (database or scanned folder).")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the stores (one per split).")] = None,
    scheme: Annotated[str | None, typer.Option(help="Recorded split scheme; none: one store 'all'.")] = None,
    split: Annotated[list[str] | None, typer.Option(help="Only these splits (repeatable).")] = None,
    dataset: Annotated[list[str] | None, typer.Option(help="Only these sub-datasets (repeatable).")] = None,
    gender: Annotated[str | None, typer.Option(help="Only this gender.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model (smplh, smplx).")] = None,
    min_duration: Annotated[float | None, typer.Option(help="Minimum input duration (s).")] = None,
    fps: Annotated[float | None, typer.Option(help="Resample to this rate, by time.")] = None,
    trim_keep: Annotated[
        float | None, typer.Option(help="Keep the middle fraction (0.8 as the AMASS tools).")
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
    seed: Annotated[int | None, typer.Option(help="Seed.")] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Processes (default: all cores).")
    ] = None,
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
    dask: Annotated[
        str | None,
        typer.Option(
            metavar="tcp://HOST:PORT", help="Run on this Dask scheduler (paths shared with its workers)."
        ),
    ] = None,
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
    from ..prepare import PrepareConfig, load_config_file, plan_prepare
    from ..prepare import prepare as run_prepare

    flags = {"catalog": catalog, "out": out, "scheme": scheme, "splits": split, "datasets": dataset,
             "gender": gender, "model": model, "min_duration": min_duration, "fps": fps, "trim_keep": trim_keep,
             "min_frames": min_frames, "canonicalise": canonicalise, "rotations": rotations, "mirror": mirror,
             "noise": noise, "frame_fraction": frame_fraction, "rotation": rotation, "dtype": dtype, "seed": seed,
             "workers": jobs, "strict": strict, "name": name, "body_models": body_models,
             "joints": joints, "dask": dask}  # fmt: skip
    with _errors():
        data: dict[str, Any] = {} if config_file is None else load_config_file(config_file)
        data.update(
            {k: (str(v) if isinstance(v, Path) else v) for k, v in flags.items() if v not in (None, [])}
        )
        config = PrepareConfig.from_mapping(data)
        if dry_run:
            _print_plan(plan_prepare(config, overwrite=overwrite))
            return
    with _errors(), _progress() as bar:
        tasks: dict[str, Any] = {}

        def on_progress(split_name: str, done: int, total: int) -> None:
            if split_name not in tasks:
                tasks[split_name] = bar.add_task(f"preparing {split_name}", total=total)
            bar.update(tasks[split_name], completed=done)

        report = run_prepare(config, overwrite=overwrite, wait=wait, progress=on_progress)
    table = Table(title=f"prepared stores, experiment {report.experiment_id}")
    for col in ("split", "store", "sequences", "frames"):
        table.add_column(col, justify="right" if col in ("sequences", "frames") else "left")
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


class ExportFormat(str, Enum):
    hdf5 = "hdf5"
    pt = "pt"
    npz = "npz"


@app.command("store")
def store_command(
    action: Annotated[str, typer.Argument(metavar="stats", help="'stats': summarise a store.")],
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

    if action != "stats":
        raise typer.BadParameter(f"unknown action {action!r}; try 'stats'")
    with _errors():
        opened = Store(path)
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


@app.command()
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

    with _errors(), _progress() as bar:
        task = bar.add_task(f"exporting {format.value}", total=None)
        try:
            export_store(store, output, format=format.value, overwrite=overwrite,
                         progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
        except ImportError as exc:
            raise typer.BadParameter(str(exc)) from None
    console.print(f"{output}: {format.value} export of {store}", highlight=False)


# ---------------------------------------------------------------------------------------------- previews


def _frame_range(text: str | None) -> tuple[int | None, int | None] | None:
    if not text:
        return None
    start, sep, stop = text.partition(":")
    try:
        return (
            (int(start) if start else None, int(stop) if stop else None)
            if sep
            else (int(start), int(start) + 1)
        )
    except ValueError:
        raise typer.BadParameter(f"frames as A:B (either may be left out), not {text!r}") from None


@app.command()
def render(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="AMASS .npz files, stores (STORE or STORE#N for sequence N) or joints .npy (T, J, 3)."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The video: .mp4 (needs ffmpeg) or .gif.")],
    model_dir: Annotated[
        Path | None,
        typer.Option(help="Body-model folder: draw the model's own joints instead of the built-in skeleton."),
    ] = None,
    frames: Annotated[
        str | None, typer.Option(help="Frames A:B of the first input (its frame rate sets the span for all).")
    ] = None,
    fps: Annotated[
        float | None, typer.Option(help="Video frame rate (default: the first input's, capped).")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="A label per input (repeat the option).")] = None,
    overlay: Annotated[
        bool, typer.Option(help="Draw every input in one panel instead of side by side.")
    ] = False,
    mesh: Annotated[
        bool, typer.Option(help="With --model-dir: the lit mesh (OpenGL offscreen); else the model's joints.")
    ] = True,
    size: Annotated[int, typer.Option(min=64, help="Panel width and height, pixels.")] = 480,
) -> None:
    """Render motion to a video: the skeleton, a ground grid in AMASS's Z-up world, the root's trajectory and a
    camera that follows the subject; several inputs side by side (or overlaid) with labels, time and frame."""
    from ..viz import View
    from ..viz import render as render_video

    with _errors(), _progress() as bar:
        task = bar.add_task(f"rendering {output.name}", total=None)
        written = render_video(
            inputs, output, model_dir=model_dir, frames=_frame_range(frames), fps=fps, labels=label,
            view=View(width=size, height=size, overlay=overlay, mesh=mesh),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    console.print(f"{written}: {len(inputs)} input(s) rendered", highlight=False)


# ---------------------------------------------------------------------------------------------- body models


@app.command()
def view(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="AMASS .npz files, stores (STORE or STORE#N for sequence N) or joints .npy (T, J, 3)."
        ),
    ],
    model_dir: Annotated[
        Path | None, typer.Option(help="Body-model folder: show meshes (and the model's joints).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; the default serves this machine only.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free one).")] = 8080,
    label: Annotated[list[str] | None, typer.Option(help="A label per input (repeat the option).")] = None,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(help="Also let pages of this origin (http://host:port) connect; '*': any (repeatable)."),
    ] = None,
) -> None:
    """An interactive viewer in the browser: play and pause, frame slider, speed, loop, sequence selection,
    skeleton or mesh, and per-frame facts. Serves until Ctrl-C."""
    from ..viz import Viewer, load_track

    labels = list(label) if label else [None] * len(inputs)
    if len(labels) != len(inputs):
        raise typer.BadParameter(f"{len(labels)} labels for {len(inputs)} inputs")
    with _errors():
        tracks = [
            load_track(spec, model_dir=model_dir, label=name)
            for spec, name in zip(inputs, labels, strict=True)
        ]
        viewer = Viewer(tracks, host=host, port=port, allow_origins=tuple(allow_origin or ()))
    console.print(f"amasskit viewer: open {viewer.url} in a browser (Ctrl-C to stop)", highlight=False)
    viewer.wait()


@app.command()
def joints(
    sequence: Annotated[Path, typer.Argument(help="An AMASS motion file.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the joints (.npy, (T, J, 3)).")
    ],
    model_dir: Annotated[
        Path | None, typer.Option(help="Body-model folder (else $AMASSKIT_BODY_MODELS).")
    ] = None,
    float64: Annotated[bool, typer.Option("--float64", help="Compute and save in float64.")] = False,
) -> None:
    """Joint locations of every frame (joints-only forward kinematics; no vertex is computed), in AMASS's Z-up world."""
    import numpy as np
    import torch

    from ..body import BodyModel, write_npy
    from ..io import read

    with _errors():
        seq = read(sequence, dtype=np.float64 if float64 else np.float32)
        model = BodyModel.for_sequence(
            seq, model_dir=model_dir, dtype=torch.float64 if float64 else torch.float32
        )
        with torch.inference_mode():
            positions = model.sequence_joints(seq).numpy()
        if not np.isfinite(positions).all():
            raise NonFiniteError(
                sequence, f"joint positions are not finite in {positions.dtype} (try --float64)"
            )
        write_npy(output, positions)
    console.print(
        f"{output}: joints {positions.shape} ({model.kind.value}, {model.gender.value})", highlight=False
    )


@app.command()
def mesh(
    sequence: Annotated[Path, typer.Argument(help="An AMASS motion file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Mesh file: .obj or .ply.")],
    frame: Annotated[
        int, typer.Option("--frame", "-f", help="Frame index (negative counts from the end).")
    ] = 0,
    model_dir: Annotated[
        Path | None, typer.Option(help="Body-model folder (else $AMASSKIT_BODY_MODELS).")
    ] = None,
) -> None:
    """The posed mesh of one frame as OBJ or PLY, to open in any mesh viewer."""
    import torch

    if output.suffix.lower() not in (".obj", ".ply"):
        raise typer.BadParameter(f"{output}: the mesh is written as .obj or .ply")

    from ..body import BodyModel, write_mesh
    from ..io import read

    with _errors():
        seq = read(sequence)
        try:
            one = seq[frame]
        except IndexError as exc:
            raise typer.BadParameter(str(exc)) from None
        model = BodyModel.for_sequence(seq, model_dir=model_dir)
        with torch.inference_mode():
            vertices = next(model.sequence_vertices(one))[0].numpy()
        write_mesh(output, vertices, model.faces.numpy())
    console.print(
        f"{output}: frame {frame}, {len(vertices)} vertices, {len(model.faces)} faces", highlight=False
    )


# ---------------------------------------------------------------------------------------------- demo


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo's files.")] = Path(
        "amasskit-demo"
    ),
    files: Annotated[int, typer.Option("--files", "-n", min=1, help="Number of motion files.")] = 38,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    release: Annotated[Release, typer.Option(help="Release layout.")] = Release.smplh,
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
    }
    with _errors(), _progress() as bar:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels[stage], total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        report = run_demo(
            out, files=files, seed=seed, release=release.value, workers=jobs, progress=on_progress
        )

    unpacked = report.unpack.results
    verified = sum(1 for r in unpacked if r.verified)
    console.print(
        f"unpacked {len(unpacked)} archives into {report.unpack.target} ({verified} verified against "
        f"{report.synth.root / 'archives' / 'checksums.json'}); catalog: {report.scan.db}",
        highlight=False,
    )
    with _errors():
        from ..catalog import Catalog

        with Catalog.open(report.scan.db) as cat:
            _print_catalog_stats(cat)
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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
