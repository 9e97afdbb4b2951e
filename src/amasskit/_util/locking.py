"""One writer per output: an advisory lock on a small file that the operating system releases when its holder
ends, however it ends (exit, exception, ``kill -9``), so a killed run never leaves it stuck.

The lock file itself is never deleted (deleting a locked file would let a second run lock a new file of the same
name while the first still runs); it holds the holder's pid and command line, for the message a second run gets.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import BusyError

__all__ = ["exclusive_lock"]

_POLL_SECONDS = 0.2


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - amasskit is tested on Linux
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str], *, what: str, wait: float = 0.0) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` for the ``with`` block.

    Args:
        path: the lock file (created, with its parent folders, if missing; never deleted).
        what: what the lock guards, for the error message (``"prepare into /data/stores"``).
        wait: seconds to wait for another holder to finish; 0 refuses at once.

    Raises:
        BusyError: another process holds the lock (after ``wait`` seconds).
    """
    lock = Path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(0.0, wait)
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                try:
                    holder = lock.read_text(errors="replace").strip() or "unknown"
                except OSError:
                    holder = "unknown"
                raise BusyError(
                    f"another amasskit run is already doing {what} (lock {lock}, held by {holder}); wait for it "
                    f"to finish, or pass a wait time (--wait SECONDS). A killed run releases the lock by itself."
                )
            time.sleep(_POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}\n".encode(errors="replace"))
        yield lock
    finally:
        os.close(fd)  # closing the descriptor releases the lock
