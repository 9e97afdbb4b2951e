"""Atomic file writes: write to a temporary sibling, flush it to disk, then rename over the target.

An interrupted write leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_open", "replace_dir"]


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


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return bool(result == 0)


def replace_dir(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Put the finished folder ``staging`` at ``target``, replacing what is there, so that ``target`` names the old
    folder or the new one, whole, at every instant.

    Where ``target`` exists, the two names are exchanged atomically (Linux ``renameat2``) and the old folder, now at
    ``staging``, is deleted; a reader that opened the old folder by a descriptor keeps reading it whole (see
    :class:`amasskit.store.Store`). Where the exchange is not available, the old folder is renamed aside first, which
    leaves a moment with nothing at ``target``. Both paths must be on the same file system (siblings are).
    """
    new, final = Path(staging), Path(target)
    if not final.exists() and not final.is_symlink():
        os.replace(new, final)
        return
    if _exchange(new, final):
        shutil.rmtree(new)
        return
    aside = final.with_name(f".{final.name}.old")
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(final, aside)
    os.replace(new, final)
    shutil.rmtree(aside)
