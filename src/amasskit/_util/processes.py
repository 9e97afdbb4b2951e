"""Choosing how worker processes start.

``fork`` starts a worker in milliseconds; ``spawn`` re-imports amasskit and numpy in each (about half a second),
which dominates short parallel jobs such as a catalog rescan. But a forked child deadlocks if the parent had already
started torch's intra-op thread pool (roma runs on torch), so ``fork`` is used only on Linux and only while torch is
not loaded in the parent; otherwise ``spawn``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from multiprocessing.context import BaseContext

__all__ = ["exit_with_parent", "pool_worker", "single_threaded_worker", "worker_context"]


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
