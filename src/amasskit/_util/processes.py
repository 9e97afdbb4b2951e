"""Choosing how worker processes start.

``fork`` starts a worker in milliseconds; ``spawn`` re-imports amasskit and numpy in each (about half a second),
which dominates short parallel jobs such as a catalog rescan. But a forked child deadlocks if the parent had already
started torch's intra-op thread pool, so ``fork`` is used only on Linux and only while torch is
not loaded in the parent; otherwise ``spawn``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from amasskit.errors import AmassKitError

__all__ = ["WorkerDiedError", "deliver", "exit_with_parent", "pool_worker", "run_in_pool", "single_threaded_worker",
           "worker_context"]  # fmt: skip

logger = logging.getLogger(__name__)

Tag = TypeVar("Tag")


class WorkerDiedError(AmassKitError, RuntimeError):
    """A worker process died (killed, out of memory, a crash in native code) while it held the call, twice: in the
    first pool and again in a fresh one."""


def worker_context() -> BaseContext:
    """The multiprocessing context for amasskit's worker pools (see the module docstring)."""
    if sys.platform.startswith("linux") and "torch" not in sys.modules:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def single_threaded_worker() -> None:
    """Pool initializer: one intra-op thread per worker process.

    A pool already uses every core; torch's (and OpenMP's) own thread pool in each worker would oversubscribe them,
    and OpenMP threads spin while they wait: measured 4.7x slower for ``prepare`` with two workers on two cores.
    """
    import os

    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def exit_with_parent() -> None:
    """Pool initializer: end this worker when the process that started it dies (even by ``kill -9``), instead of
    working on (unpacking, writing) for a run that no longer exists.

    On Linux the kernel sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``); everywhere, a daemon thread also
    watches for the worker being re-parented.
    """
    import os
    import threading
    import time

    parent = os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    if parent != 1:  # started by init already: nothing to watch
        threading.Thread(target=watch, name="amasskit-exit-with-parent", daemon=True).start()


def pool_worker() -> None:
    """Pool initializer for amasskit's CPU-bound worker pools: one thread each, and gone with the parent."""
    single_threaded_worker()
    exit_with_parent()


def deliver(
    tag: Tag,
    result: Callable[[], Any],
    on_result: Callable[[Tag, Any], None],
    on_error: Callable[[Tag, Exception], None] | None,
) -> None:
    """``on_result(tag, result())``; where ``result()`` raises, ``on_error(tag, exception)``, or the exception
    itself without ``on_error`` (the delivery of one finished call, in a pool or on a cluster)."""
    try:
        value = result()
    except Exception as exc:
        if on_error is None:
            raise
        on_error(tag, exc)
    else:
        on_result(tag, value)


def _survived(future: Any) -> Any:
    """A pool future's result; a pool broken a second time is a :class:`WorkerDiedError`."""
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise WorkerDiedError(
            "a worker process died (killed, out of memory, or a crash) in this call or one beside it, in two "
            "pools: not retried again"
        ) from exc


def run_in_pool(
    fn: Callable[..., Any],
    calls: Sequence[tuple[tuple[Any, ...], Tag]],
    on_result: Callable[[Tag, Any], None],
    *,
    processes: int,
    on_error: Callable[[Tag, Exception], None] | None = None,
    context: BaseContext | None = None,
    initializer: Callable[[], None] | None = pool_worker,
    what: str = "tasks",
) -> None:
    """Run ``fn(*args)`` for every ``(args, tag)`` of ``calls`` in a pool of ``processes`` workers, in completion
    order (the local counterpart of :func:`amasskit._util.cluster.run_on_dask`).

    ``on_result(tag, value)`` takes each result; a call that raised goes to ``on_error(tag, exception)`` where given
    (else it propagates). Whatever the callbacks raise (``--strict``, Ctrl-C) cancels what is left.

    One dead worker breaks the whole pool: every call it had not finished fails with ``BrokenProcessPool``, though
    only one of them (at most one per dead worker) was running there. Those calls run again once, in a fresh pool;
    a call whose pool breaks again is a :class:`WorkerDiedError` (to ``on_error``, or raised).
    """
    pending = list(calls)
    for attempt in (1, 2):
        broken: list[tuple[tuple[Any, ...], Tag]] = []
        with ProcessPoolExecutor(
            processes, mp_context=context or worker_context(), initializer=initializer
        ) as pool:
            futures = {pool.submit(fn, *args): (args, tag) for args, tag in pending}
            try:
                for future in as_completed(futures):
                    args, tag = futures[future]
                    if attempt == 1 and isinstance(future.exception(), BrokenProcessPool):
                        broken.append((args, tag))
                        continue
                    deliver(tag, functools.partial(_survived, future), on_result, on_error)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        if not broken:
            return
        logger.warning("a worker process died (killed, or out of memory): its pool's %d unfinished %s run again "
                       "in a fresh pool", len(broken), what)  # fmt: skip
        pending = broken
