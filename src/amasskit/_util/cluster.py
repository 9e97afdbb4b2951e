"""Running a batch of picklable calls on a Dask cluster (``prepare --dask``, ``convert --dask``).

Tasks carry only their arguments (paths, ranges, settings); inputs and results stay on storage every worker and the
client share, so only small values come back through the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["run_on_dask"]

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
    """
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise ImportError(
            "running on a Dask cluster needs dask.distributed: pip install 'amasskit[dask]'"
        ) from None
    with Client(address) as client:
        logger.info("%d %s on the Dask cluster at %s", len(calls), what, address)
        futures = {client.submit(fn, *args, pure=False): tag for args, tag in calls}
        try:
            for future in dask_completed(list(futures)):
                tag = futures[future]
                try:
                    value = future.result()
                except Exception as exc:
                    if on_error is None:
                        raise
                    on_error(tag, exc)
                else:
                    on_result(tag, value)
        except BaseException:
            client.cancel(list(futures))
            raise
