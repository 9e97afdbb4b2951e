"""Test helper: another process holding one of amasskit's locks."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

HOLDER = textwrap.dedent(
    """
    import sys, time
    from amasskit._util.locking import exclusive_lock
    with exclusive_lock(sys.argv[1], what="test"):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


@contextlib.contextmanager
def hold_lock(path: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock at ``path`` for ``seconds`` (killed at the end of the block if need be)."""
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE,
                          text=True) as proc:  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        try:
            yield proc
        finally:
            if proc.poll() is None and seconds > 5:
                proc.kill()
            proc.wait()
