"""The ``amasskit`` Typer app, its global options and what every command shares: consoles, error printing, progress.

Errors from amasskit are printed as ``ErrorType: message`` (no traceback; ``-v`` adds it) and give exit code 1.

Every command is a :class:`PathCommand`: each path argument or option (``Path``, or a list of them) reaches the
command resolved once (``~`` expanded, absolute, symlinks and ``..`` resolved; :func:`amasskit._util.paths.user_path`),
defaults included, so a command sees the same path however it was typed and from whichever directory.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

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
from typer.core import TyperCommand

from .. import __version__
from .._util.paths import user_path
from ..errors import AmassKitError


def _resolved(value: Any) -> Any:
    if isinstance(value, Path):
        return user_path(value)
    if isinstance(value, (list, tuple)) and any(isinstance(v, Path) for v in value):
        return type(value)(user_path(v) if isinstance(v, Path) else v for v in value)
    return value


class PathCommand(TyperCommand):
    """A command whose path parameters are resolved (:func:`~amasskit._util.paths.user_path`) before it runs."""

    def invoke(self, ctx: Any) -> Any:
        with handle_errors():
            ctx.params = {name: _resolved(value) for name, value in ctx.params.items()}
        return super().invoke(ctx)


class AmassTyper(typer.Typer):
    """A Typer app whose commands are :class:`PathCommand` unless told otherwise (the app and its sub-apps)."""

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or PathCommand, **kwargs)


app = AmassTyper(
    name="amasskit",
    help="From the AMASS motion-capture archives to training-ready data, fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _width(stream: Any) -> int | None:
    """The width of tables and wrapped text: the terminal's where there is one (None: rich measures it), else
    ``$COLUMNS`` or 160, so output piped to a file or another program keeps every column instead of 80."""
    if stream.isatty():
        return None
    return int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else 160


# soft wrap: a line of text (a path, a command to copy) is never broken by an inserted newline; the terminal wraps
# it on screen, and tables still fit the width
console = Console(width=_width(sys.stdout), soft_wrap=True)
err_console = Console(stderr=True, width=_width(sys.stderr), soft_wrap=True)
state = {"verbose": 0}


def dask_address(value: str | None) -> str | None:
    """Callback of ``--dask``: an address of a scheduler's form, checked before any work."""
    if value is None:
        return None
    from .._util.cluster import check_address

    try:
        return check_address(value)
    except AmassKitError as exc:
        raise typer.BadParameter(str(exc)) from None


DaskAddress = Annotated[
    str | None,
    typer.Option(
        metavar="tcp://HOST:PORT",
        help="Run on this Dask scheduler (paths shared with its workers).",
        callback=dask_address,
    ),
]
"""The ``--dask`` option of the commands that can run on a Dask cluster (prepare, convert, prior)."""

# the selection options `prepare` and `prior poses` share (each also a config key: splits, datasets, ...)
CatalogOption = Annotated[Path | None, typer.Option(help="Catalog (database or scanned folder).")]
SplitsOption = Annotated[
    list[str] | None, typer.Option("--split", "--splits", help="Only these splits (repeatable).")
]
DatasetsOption = Annotated[
    list[str] | None, typer.Option("--dataset", "--datasets", help="Only these sub-datasets (repeatable).")
]
GenderOption = Annotated[str | None, typer.Option(help="Only this gender.")]
ModelOption = Annotated[str | None, typer.Option(help="Only this model (smplh, smplx).")]
MinDurationOption = Annotated[float | None, typer.Option(help="Minimum input duration (s).")]


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


SEED_MAX = 2**63 - 1
"""The largest seed (torch's generators take a signed 64-bit one)."""


def device_value(value: str | None) -> str | None:
    """Callback of every ``--device``: a device this machine has, checked before any work."""
    if value is None:
        return None
    from .._util.hardware import torch_device

    try:
        torch_device(value, what="--device")
    except AmassKitError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


#: the device of a command that computes with torch (checked before any work: an unknown name, CUDA missing, ...)
DeviceOption = Annotated[str, typer.Option(help="cpu, cuda or cuda:N.", callback=device_value)]
#: the processes of a command that runs per file (prepare and what runs through it)
JobsOption = Annotated[
    int | None, typer.Option("--jobs", "--workers", "-j", min=1, help="Processes (default: all cores).")
]


def config_mapping(config_file: Path | None, flags: dict[str, Any]) -> dict[str, Any]:
    """A command's config as one mapping: the file's keys (its paths taken from its own folder), then the flags that
    were given on top (a path as typed; every config resolves its paths once). ``prepare``, ``prior poses`` and
    ``prior train`` read their configs this way.

    Raises:
        ConfigError: an unreadable or malformed config file.
    """
    from ..prepare import load_config_file

    data: dict[str, Any] = {} if config_file is None else load_config_file(config_file)
    data.update({k: (str(v) if isinstance(v, Path) else v) for k, v in flags.items() if v not in (None, [])})
    return data


@contextmanager
def handle_errors() -> Iterator[None]:
    """Print amasskit's own errors as ``ErrorType: message`` and exit 1; anything else is a bug and keeps its
    traceback."""
    try:
        yield
    except (AmassKitError, FileExistsError, FileNotFoundError, NotADirectoryError) as exc:
        if state["verbose"] > 0:
            err_console.print_exception()
        # one line, never folded: the path in it stays whole for the reader to copy and for grep
        err_console.print(f"[bold red]{type(exc).__name__}[/]: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


#: seconds between the progress lines logged where stderr is not a terminal (a log file, CI, nohup)
PROGRESS_LINE_SECONDS = 10.0


class _ProgressLines(Progress):
    """A progress bar that, where it cannot draw (stderr is not a terminal), logs a line per task every
    :data:`PROGRESS_LINE_SECONDS` and when the task completes: ``training (loss 0.02): 300/1000 steps, 42 s``."""

    def __init__(self, *columns: Any, lines: bool, **options: Any) -> None:
        super().__init__(*columns, **options)
        self._lines = lines
        self._logged: dict[Any, float] = {}
        self._finished: set[Any] = set()

    def update(self, task_id: Any, **changes: Any) -> None:
        super().update(task_id, **changes)
        self._line(task_id)

    def advance(self, task_id: Any, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._line(task_id)

    def _line(self, task_id: Any) -> None:
        if not self._lines or task_id in self._finished:
            return
        task = self._tasks[task_id]
        now = time.monotonic()
        done = task.total is not None and task.completed >= task.total
        last = self._logged.setdefault(task_id, now)  # the clock starts at the task's first update
        if not done and now - last < PROGRESS_LINE_SECONDS:
            return
        total = f"/{task.total:,.0f}" if task.total is not None else ""
        logging.getLogger("amasskit.progress").info(
            "%s: %s%s, %.0f s", task.description, f"{task.completed:,.0f}", total, task.elapsed or 0.0
        )
        self._logged[task_id] = now
        if done:
            self._finished.add(task_id)


def progress_bar() -> Progress:
    """The progress display of every long step: a bar on a terminal; elsewhere (a log file, CI) a line now and
    then, through logging (none with ``-q``)."""
    drawn = err_console.is_terminal
    return _ProgressLines(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=state["verbose"] < 0 or not drawn,
        lines=state["verbose"] >= 0 and not drawn,
    )


@contextmanager
def step_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar of one task for a long library call: yields the ``progress(done, total)`` callback to pass
    it."""
    with progress_bar() as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
