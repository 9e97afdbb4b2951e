"""Atomic writes, the one way amasskit writes an output: build it under a temporary sibling name, flush it, then
rename it over the target.

An interrupted write leaves either the old output or the new one, never half of one, and removes its temporary.

* :func:`atomic_open` - a file written through a file object;
* :func:`atomic_path` - a file written by a tool that wants a path (matplotlib, ffmpeg, PIL);
* :func:`staged_dir` - a folder, swapped in whole by :func:`replace_dir`.
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

__all__ = ["atomic_open", "atomic_path", "replace_dir", "staged_dir"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces ``path`` when the ``with`` block ends without an exception.

    The temporary keeps ``path``'s suffix (``.tmp.mp4``), for writers that pick the format from it; it is removed on
    failure. Parent folders are created.

    Args:
        path: final location.
        fsync: flush the data to disk before the rename (on by default; turn off for throwaway files).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fp:
                os.fsync(fp.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[IO[bytes]]:
    """A binary file object whose contents replace ``path`` only when the ``with`` block ends without an exception
    (see :func:`atomic_path`)."""
    with atomic_path(path, fsync=False) as tmp, open(tmp, "wb") as fp:
        yield fp
        fp.flush()
        if fsync:
            os.fsync(fp.fileno())


@contextlib.contextmanager
def staged_dir(target: str | os.PathLike[str], *, unique: bool = False) -> Iterator[Path]:
    """A fresh staging folder beside ``target`` that replaces ``target`` (:func:`replace_dir`) when the ``with`` block
    ends without an exception, and is deleted otherwise.

    Args:
        unique: a new random name per call (writers that may run at once); by default the name is
            ``.<target>.partial`` and a leftover of a killed run there is deleted first (writers that run one at a time
            per target).
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    if unique:
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
        os.chmod(staging, 0o755)
    else:
        staging = final.with_name(f".{final.name}.partial")
        if staging.exists() or staging.is_symlink():
            _remove(staging)
        staging.mkdir()
    try:
        yield staging
        replace_dir(staging, final)
    except BaseException:
        _remove(staging)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


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
