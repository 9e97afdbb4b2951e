"""Test helper: a real local Dask cluster, started the way every Dask test starts one.

Dask's default dashboard port is 8787; a cluster that asks for it fails ("Port 8787 is already in use") whenever
anything else on the machine holds it. The helper holds 8787 itself while the cluster starts (where it is free), so
every Dask test proves that the cluster needs no fixed port.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest

DASHBOARD_DEFAULT_PORT = 8787


@contextlib.contextmanager
def local_cluster(workers: int = 2) -> Iterator[Any]:
    """A ``distributed.LocalCluster`` of ``workers`` single-threaded processes, every port chosen free: the
    scheduler's and the dashboard's (``dashboard_address=None`` does not do it: the scheduler's HTTP server still
    binds 8787)."""
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed (amasskit[dask])"
    )
    with contextlib.ExitStack() as stack:
        blocker = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        with contextlib.suppress(OSError):  # already taken by something else: the same test
            blocker.bind(("127.0.0.1", DASHBOARD_DEFAULT_PORT))
            blocker.listen(1)
        cluster = stack.enter_context(
            distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                scheduler_port=0,
            )
        )
        yield cluster
