"""Atomic file writes: write to a temporary sibling, flush it to disk, then rename over the target.

An interrupted write leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_open"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[IO[bytes]]:
    """Open a binary file that replaces ``path`` only when the ``with`` block ends without an exception.

    The temporary file lives beside ``path`` (same file system, so the rename is atomic) and is removed on failure.
    Parent folders are created.

    Args:
        path: final location.
        fsync: flush the data to disk before the rename (on by default; turn off for throwaway files).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fp:
            yield fp
            fp.flush()
            if fsync:
                os.fsync(fp.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
