"""The ``amasskit`` Typer app, its global options and what every command shares: consoles, error printing, progress.

Errors from amasskit are printed as ``ErrorType: message`` (no traceback; ``-v`` adds it) and give exit code 1.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .. import __version__
from ..errors import AmassKitError

app = typer.Typer(
    name="amasskit",
    help="From the AMASS motion-capture archives to training-ready data, fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
state = {"verbose": 0}


class Release(str, Enum):
    smplh = "smplh"
    smplx = "smplx"


DaskAddress = Annotated[
    str | None,
    typer.Option(
        metavar="tcp://HOST:PORT", help="Run on this Dask scheduler (paths shared with its workers)."
    ),
]
"""The ``--dask`` option of the commands that can run on a Dask cluster (prepare, convert, prior)."""


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
    state["verbose"] = -1 if quiet else verbose
    handler = RichHandler(console=err_console, show_path=verbose >= 2, show_time=False, markup=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    logging.getLogger("amasskit").setLevel(level)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Print amasskit's own errors as ``ErrorType: message`` and exit 1; anything else is a bug and keeps its
    traceback."""
    try:
        yield
    except (AmassKitError, FileExistsError, FileNotFoundError, NotADirectoryError) as exc:
        if state["verbose"] > 0:
            err_console.print_exception()
        err_console.print(f"[bold red]{type(exc).__name__}[/]: {exc}", highlight=False)
        raise typer.Exit(1) from None


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=state["verbose"] < 0 or not err_console.is_terminal,
    )
