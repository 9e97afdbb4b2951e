"""Unpacking stays bounded and safe: decompression bombs and sparse members refused with memory and disk bounded,
clashing members reported as hostile, amasskit's own records protected, folders amasskit did not write kept, one
unpack per target, workers gone with the run."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from amasskit.archives import LOCK_NAME, RECORD_NAME, unpack_archive, unpack_archives
from amasskit.errors import BusyError
from tests.archives.helpers import good_members, make_tar, member
from tests.locks import hold_lock


class Zeros(io.RawIOBase):
    """``size`` zero bytes, produced as they are read (the test never holds them all)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = b"\0" * n
        self.left -= n
        return n


def zero_bomb(path: Path, size: int) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        info = member("CMU/01/bomb_poses.npz")
        info.size = size
        tar.addfile(info, io.BufferedReader(Zeros(size), 1 << 20))
    return path


def left_in(target: Path) -> list[str]:
    return sorted(p.name for p in target.iterdir()) if target.exists() else []


def test_a_decompression_bomb_is_refused_with_memory_and_disk_bounded(tmp_path: Path) -> None:
    archive = zero_bomb(tmp_path / "CMU.tar.gz", 300 << 20)  # 300 MiB of zeros in a few hundred KiB
    assert archive.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        result = unpack_archive(archive, tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.status == "failed" and result.error is not None
    assert result.error.startswith("DecompressionBombError") and "limit" in result.error
    assert peak < 16 << 20  # refused from the member's header: nothing of it was decompressed into memory
    assert left_in(tmp_path / "out") == []  # and nothing of it is on disk


def test_limits_are_overridable_and_apply_to_every_byte(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "CMU.tar.bz2", good_members())  # 3,000 bytes of member data
    small = unpack_archive(archive, tmp_path / "a", max_bytes=2_000)
    assert small.status == "failed" and small.error is not None and "DecompressionBombError" in small.error
    assert left_in(tmp_path / "a") == []
    assert unpack_archive(archive, tmp_path / "b", max_bytes=3_000).status == "unpacked"
    bomb = zero_bomb(tmp_path / "big.tar.gz", 80 << 20)
    assert unpack_archive(bomb, tmp_path / "c", max_ratio=None).status == "unpacked"  # genuine? say so
    assert (tmp_path / "c/CMU/01/bomb_poses.npz").stat().st_size == 80 << 20


def test_a_sparse_member_counts_at_its_full_size(tmp_path: Path) -> None:
    tar = shutil.which("tar")
    if tar is None:
        pytest.skip("GNU tar is needed to write a sparse member")
    source = tmp_path / "src" / "CMU"
    source.mkdir(parents=True)
    with (source / "hole_poses.npz").open("wb") as fp:
        fp.truncate(2 << 30)  # 2 GiB of holes
    archive = tmp_path / "CMU.tar.gz"
    subprocess.run([tar, "--sparse", "-czf", str(archive), "-C", str(tmp_path / "src"), "CMU"], check=True)
    assert archive.stat().st_size < 1 << 20
    result = unpack_archive(archive, tmp_path / "out")
    assert result.status == "failed" and result.error is not None and "DecompressionBombError" in result.error
    assert left_in(tmp_path / "out") == []


def test_an_oversized_tar_header_is_refused_unread(tmp_path: Path) -> None:
    archive = tmp_path / "CMU.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = member("CMU/01/a_poses.npz")
        info.pax_headers = {"comment": "x" * (3 << 20)}
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    result = unpack_archive(archive, tmp_path / "out")
    assert result.status == "failed" and result.error is not None
    assert result.error.startswith("DecompressionBombError") and "header record" in result.error


CLASHES = {
    "file-then-folder": [(member("CMU/a"), b"x"), (member("CMU/a/b"), b"y")],
    "folder-then-file": [(member("CMU/a", tarfile.DIRTYPE), None), (member("CMU/a"), b"x")],
    "through-a-symlink": [
        (member("CMU/01", tarfile.DIRTYPE), None),
        (member("CMU/l", tarfile.SYMTYPE, "01"), None),
        (member("CMU/l/x_poses.npz"), b"x"),
    ],
    "file-then-symlink": [(member("CMU/a"), b"x"), (member("CMU/a", tarfile.SYMTYPE, "b"), None)],
}


@pytest.mark.parametrize("case", sorted(CLASHES))
def test_clashing_members_are_hostile_not_corrupt(tmp_path: Path, case: str) -> None:
    archive = make_tar(tmp_path / "arch.tar.bz2", CLASHES[case])
    result = unpack_archive(archive, tmp_path / "out")
    assert result.status == "failed" and result.error is not None
    assert result.error.startswith("HostileArchiveError") and "conflicting members" in result.error
    assert left_in(tmp_path / "out") == []


@pytest.mark.parametrize("name", [RECORD_NAME, LOCK_NAME, ".CMU.tar.bz2.partial/x", ".amasskit-anything"])
def test_members_colliding_with_amasskit_records_are_refused(tmp_path: Path, name: str) -> None:
    target = tmp_path / "out"
    unpack_archives([make_tar(tmp_path / "KIT.tar.bz2", [(member("KIT/a_poses.npz"), b"k")])], target)
    record = (target / RECORD_NAME).read_bytes()
    archive = make_tar(tmp_path / "CMU.tar.bz2", [*good_members(), (member(name), b"{}")])
    report = unpack_archives([archive], target)
    (result,) = report.results
    assert result.status == "failed" and result.error is not None and "HostileArchiveError" in result.error
    assert (target / RECORD_NAME).read_bytes() == record


def test_a_folder_amasskit_did_not_unpack_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "out"
    mine = target / "CMU" / "my_notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    archive = make_tar(tmp_path / "CMU.tar.bz2", good_members())
    report = unpack_archives([archive], target)
    (result,) = report.results
    assert result.status == "failed" and result.error is not None and "OutputExistsError" in result.error
    assert mine.read_text() == "mine" and left_in(target) == sorted(["CMU", LOCK_NAME])
    again = unpack_archives([archive], target, overwrite=True)  # asked for: replaced
    assert again.ok and not mine.exists() and (target / "CMU/01/a_poses.npz").is_file()
    forced = unpack_archives([archive], target, force=True)  # now amasskit's own: replaced without asking
    assert forced.ok and forced.results[0].status == "unpacked"


def test_one_unpack_per_target(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "CMU.tar.bz2", good_members())
    target = tmp_path / "out"
    with hold_lock(target / LOCK_NAME, 60), pytest.raises(BusyError, match="unpack into"):
        unpack_archives([archive], target)
    assert not (target / "CMU").exists()
    assert unpack_archives([archive], target).ok  # the holder was killed: the lock is free again


PARENT = textwrap.dedent(
    """
    import sys, time
    from concurrent.futures import ProcessPoolExecutor
    from amasskit._util.processes import exit_with_parent, worker_context
    use = sys.argv[1] == "yes"
    pool = ProcessPoolExecutor(1, mp_context=worker_context(), initializer=exit_with_parent if use else None)
    pool.submit(time.sleep, 120)
    time.sleep(0.5)
    print(*pool._processes, flush=True)
    time.sleep(120)
    """
)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("initializer", ["yes", "no"])
def test_workers_end_when_the_run_is_killed(initializer: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT, initializer], stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        (worker,) = (int(p) for p in parent.stdout.readline().split())
        assert alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    # a worker that is told of its parent's death ends within milliseconds; one that is not would outlive any wait,
    # so a second shows it
    deadline = time.monotonic() + (5.0 if initializer == "yes" else 1.0)
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert alive(worker) is (initializer == "no")  # without it the worker would work on, orphaned
    finally:
        if alive(worker):
            os.kill(worker, signal.SIGKILL)
