"""Running a batch of picklable calls on a Dask cluster (``prepare --dask``, ``convert --dask``).

Tasks carry only their arguments (paths, ranges, settings); inputs and results stay on storage every worker and the
client share, so only small values come back through the scheduler.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import ClusterError, InvalidArgumentError
from .processes import deliver

__all__ = ["check_address", "run_on_dask"]

_ADDRESS = re.compile(r"(?:(?:tcp|tls|ucx|ws|wss)://)?(?:[\w.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}")


def check_address(address: str, *, what: str = "--dask") -> str:
    """``address`` if it has a scheduler address's form (``tcp://HOST:PORT``, or ``HOST:PORT``).

    Raises:
        InvalidArgumentError: anything else (the message names ``what``).
    """
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise InvalidArgumentError(f"{what} {address!r}: not a Dask scheduler address (tcp://HOST:PORT)")
    return address


logger = logging.getLogger(__name__)

Tag = TypeVar("Tag")


def run_on_dask(
    address: str,
    fn: Callable[..., Any],
    calls: Sequence[tuple[tuple[Any, ...], Tag]],
    on_result: Callable[[Tag, Any], None],
    *,
    on_error: Callable[[Tag, Exception], None] | None = None,
    what: str = "tasks",
) -> None:
    """Run ``fn(*args)`` for every ``(args, tag)`` of ``calls`` on the cluster at ``address``, in completion order.

    ``on_result(tag, value)`` takes each result; a call that raised goes to ``on_error(tag, exception)`` where given
    (else it propagates). Whatever ``on_result`` or ``on_error`` raise (``--strict``, Ctrl-C) cancels what is left.

    Raises:
        ImportError: dask.distributed is not installed (``pip install 'amasskit[dask]'``).
        InvalidArgumentError: ``address`` is not a scheduler address.
        ClusterError: no scheduler answers there.
    """
    check_address(address)
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise ImportError(
            "running on a Dask cluster needs dask.distributed: pip install 'amasskit[dask]'"
        ) from None
    try:
        client = Client(address)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"no Dask scheduler answers at {address}: {exc}") from None
    with client:
        logger.info("%d %s on the Dask cluster at %s", len(calls), what, address)
        futures = {client.submit(fn, *args, pure=False): tag for args, tag in calls}
        try:
            for future in dask_completed(list(futures)):
                deliver(futures[future], future.result, on_result, on_error)
        except BaseException:
            client.cancel(list(futures))
            raise
