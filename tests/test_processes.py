"""Worker pools: a dead worker's calls run again once in a fresh pool, and a call that kills its worker every time
is reported as that call's error while the others finish."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from amasskit._util.processes import WorkerDiedError, run_in_pool


def _square_or_die_once(value: int, marker: str) -> int:
    """Dies (as a worker killed by the OOM killer does: no exception, no cleanup) the first time any call claims
    ``marker``; every other call returns ``value**2``."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return value * value
    os._exit(1)


def _square_or_always_die(value: int, poison: int) -> int:
    if value == poison:
        os._exit(1)
    return value * value


def test_the_calls_of_a_killed_worker_run_again_in_a_fresh_pool(tmp_path: Path) -> None:
    marker = str(tmp_path / "died")
    results: dict[int, int] = {}
    errors: dict[int, Exception] = {}
    run_in_pool(_square_or_die_once, [((v, marker), v) for v in range(8)], results.__setitem__,
                on_error=errors.__setitem__, processes=2, initializer=None)  # fmt: skip
    assert Path(marker).exists()  # a worker did die
    assert errors == {}
    assert results == {v: v * v for v in range(8)}


def test_a_call_that_kills_its_worker_every_time_is_its_own_error(tmp_path: Path) -> None:
    results: dict[int, int] = {}
    errors: dict[int, Exception] = {}
    run_in_pool(_square_or_always_die, [((v, 3), v) for v in range(6)], results.__setitem__,
                on_error=errors.__setitem__, processes=2, initializer=None)  # fmt: skip
    assert isinstance(errors.get(3), WorkerDiedError)
    assert 3 not in results
    # the others finished, or (had they shared the second pool with the poison) were reported, never lost
    assert set(results) | set(errors) == set(range(6))
    assert all(results[v] == v * v for v in results)
    assert all(isinstance(e, WorkerDiedError) for e in errors.values())

    with pytest.raises(WorkerDiedError):  # without on_error, the typed error is raised
        run_in_pool(_square_or_always_die, [((3, 3), 3)], results.__setitem__, processes=1, initializer=None)


def test_a_dask_address_that_is_malformed_or_unreachable_is_a_typed_error() -> None:
    """``--dask`` with a malformed address ended in a ValueError traceback, an unreachable one in an OSError after
    30 s: now an InvalidArgumentError before any connection, and a ClusterError naming the address."""
    import dask
    import distributed  # noqa: F401  # its config defaults loaded first: set() would otherwise drop them on exit

    from amasskit._util.cluster import run_on_dask
    from amasskit.errors import ClusterError, InvalidArgumentError

    for address in ("nonsense", "tcp://", "tcp://host:port", "host:123456"):
        with pytest.raises(InvalidArgumentError, match="not a Dask scheduler address"):
            run_on_dask(address, abs, [((1,), 1)], lambda tag, value: None)
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(ClusterError, match=r"no Dask scheduler answers at tcp://127\.0\.0\.1:9"),
    ):
        run_on_dask("tcp://127.0.0.1:9", abs, [((1,), 1)], lambda tag, value: None)
