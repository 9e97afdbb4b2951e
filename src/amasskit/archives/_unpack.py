"""Unpack AMASS release archives: in parallel, safely, atomically, resumably, verified.

Each archive is streamed (never seeked) through Python's tar reader, which checks every member before anything is
written: absolute paths, ``..``, device files and FIFOs refuse the whole archive; links are kept only when they stay
inside the target (symbolic links are made last and checked by resolving them, so no write ever passes through one).
Members are written to a hidden staging folder beside the target (``.<archive>.partial``) and the archive's top-level
folders are renamed into place only when the archive is complete, so an interrupted run leaves no half-unpacked folder.

A record of what was unpacked (archive size, mtime and md5, the folders, their checksums) lives in the target as
``.amasskit-unpack.json``; a later run skips archives already unpacked (and verified, when asked) and unchanged.

Bounded: an archive may unpack to at most ``max_ratio`` times its own size and at most ``max_bytes`` in all (defaults
far above the real release's, overridable); each member's size, sparse members at their full size, is checked against
what is left before a byte of it is written, and tar's own header records (long names, pax headers) are capped, so a
decompression bomb is refused (:class:`DecompressionBombError`) with memory and disk bounded. Members that clash (a
file and a folder of one name, a member below a file or a symbolic link) and top-level names that would collide with
amasskit's own records refuse the archive as hostile. A folder at the target that amasskit did not unpack is never
replaced (``overwrite`` says otherwise); a folder it did is replaced whole (an atomic exchange where the system has
one). One unpack per target at a time (a lock the operating system releases if the run dies), and worker processes
end with the run that started them.

bz2 decompression is the bottleneck. When ``lbzip2`` or ``pbzip2`` is installed it decompresses on several cores and
Python reads the tar stream from its output; otherwise Python's ``bz2`` is used. Several archives run in parallel in
worker processes, largest first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from .._util.atomic import atomic_open, replace_dir
from .._util.locking import exclusive_lock
from .._util.paths import user_path
from .._util.processes import exit_with_parent, worker_context
from ..choices import Decompressor
from ..errors import (
    AmassKitError,
    ArchiveError,
    CorruptArchiveError,
    DecompressionBombError,
    HostileArchiveError,
    OutputExistsError,
)
from ._checksum import ArchiveChecksum, load_checksum_table, md5_dir

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_RATIO",
    "LOCK_NAME",
    "RECORD_NAME",
    "ArchiveResult",
    "UnpackReport",
    "find_decompressor",
    "unpack_archive",
    "unpack_archives",
]

logger = logging.getLogger(__name__)

RECORD_NAME = ".amasskit-unpack.json"
LOCK_NAME = ".amasskit-unpack.lock"
# Limits on what one archive may unpack to. The AMASS release's bz2 archives unpack to 1-3x their size (float64 npz
# members compress poorly) and to 25 GB in all; these defaults leave a wide margin and stop bombs.
DEFAULT_MAX_RATIO = 100.0
DEFAULT_MAX_BYTES = 1 << 40  # 1 TiB
_MIN_LIMIT = 64 << 20  # a tiny archive may still unpack to 64 MiB, whatever its ratio
_MAX_HEADER = 1 << 20  # tar's own records (long names, pax headers) above this are refused unread
_CHUNK = 1 << 20
Status = Literal["unpacked", "skipped", "failed"]


@dataclass(frozen=True)
class ArchiveResult:
    """What happened to one archive.

    Attributes:
        archive: the archive's path.
        status: ``unpacked``, ``skipped`` (already unpacked and unchanged) or ``failed``.
        folders: the top-level entries it unpacked to.
        files, bytes: regular files and their bytes.
        verified: True (matches the checksum table), False (mismatch), None (not checked, or not in the table).
        checksums: top-level folder -> its :func:`md5_dir` (when verified).
        error: ``"ErrorType: message"`` for a failure or a mismatch.
        decompressor: ``python``, ``lbzip2`` or ``pbzip2``.
        seconds: wall time.
        archive_md5: md5 of the archive file, computed while reading it.
    """

    archive: str
    status: Status
    folders: tuple[str, ...] = ()
    files: int = 0
    bytes: int = 0
    verified: bool | None = None
    checksums: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    decompressor: str = "python"
    seconds: float = 0.0
    archive_md5: str | None = None

    @property
    def ok(self) -> bool:
        """Unpacked or skipped, and not a checksum mismatch."""
        return self.status != "failed" and self.verified is not False


@dataclass(frozen=True)
class UnpackReport:
    """Results of :func:`unpack_archives`, in the order the archives were given."""

    target: Path
    results: list[ArchiveResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[ArchiveResult]:
        return [r for r in self.results if not r.ok]


def find_decompressor(preference: Decompressor = "auto") -> Decompressor:
    """The bz2 decompressor to use: ``lbzip2`` or ``pbzip2`` when installed (``auto``), else ``python``.

    Raises:
        FileNotFoundError: a tool asked for by name is not installed.
    """
    if preference == "python":
        return "python"
    if preference == "auto":
        if shutil.which("lbzip2"):
            return "lbzip2"
        if shutil.which("pbzip2"):
            return "pbzip2"
        return "python"
    if shutil.which(preference) is None:
        raise FileNotFoundError(f"{preference} is not installed; install it or use decompressor='auto'")
    return preference


# ---------------------------------------------------------------------------------------------- streams


class _CountingReader:
    """A read-only file that counts and hashes what is read through it, and reports progress."""

    def __init__(self, raw: IO[bytes], report: Callable[[int], None] | None) -> None:
        self._raw = raw
        self.count = 0
        self.md5 = hashlib.md5()
        self._report = report
        self._last = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.count += len(data)
        self.md5.update(data)
        if self._report is not None and self.count - self._last >= _CHUNK:
            self._report(self.count)
            self._last = self.count
        return data

    def readable(self) -> bool:
        return True


@contextlib.contextmanager
def _tar_stream(path: Path, tool: str, threads: int, report: Callable[[int], None] | None, limit: int) -> Any:
    """Yield ``(tar, counter)``: a streaming tar reader over the decompressed archive, and the input counter."""
    with path.open("rb") as raw:
        counter = _CountingReader(raw, report)
        if tool == "python" or not path.name.endswith((".bz2", ".tbz2", ".tbz")):
            with tarfile.open(fileobj=counter, mode="r|*", tarinfo=_BoundedTarInfo) as tar:  # type: ignore[call-overload]
                yield tar, counter
            return
        args = [tool, "-d", "-c"] + ([f"-n{threads}"] if tool == "lbzip2" else [f"-p{threads}"])
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

        def feed() -> None:
            stdin = proc.stdin
            assert stdin is not None
            try:
                while chunk := counter.read(_CHUNK):
                    stdin.write(chunk)
            except (BrokenPipeError, ValueError, OSError):
                pass  # the reader stopped early (an error or a refused archive); the main thread reports it
            finally:
                with contextlib.suppress(OSError):
                    stdin.close()

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|", tarinfo=_BoundedTarInfo) as tar:
                yield tar, counter
                # drain, so that a truncated input is noticed by the tool's exit status (bounded: zeros after the
                # end of the archive are a bomb too)
                drained = 0
                while chunk := proc.stdout.read(_CHUNK):
                    drained += len(chunk)
                    if drained > limit:
                        raise DecompressionBombError(
                            path, f"more than {limit:,} bytes after the end of the archive"
                        )
        finally:
            proc.stdout.close()
            feeder.join()
            stderr = proc.stderr.read().decode(errors="replace").strip()
            proc.stderr.close()
            code = proc.wait()
        if code != 0:
            raise tarfile.ReadError(
                f"{tool} failed (exit {code}): {stderr or 'corrupt or truncated bz2 data'}"
            )


# ---------------------------------------------------------------------------------------------- members


class _OversizedHeaderError(Exception):
    """A tar header record larger than :data:`_MAX_HEADER` (raised from inside tarfile, converted by the caller)."""


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses tar's extended header records (GNU long names and links, pax headers) above :data:`_MAX_HEADER`
    before tarfile reads them into memory: a hostile archive could otherwise make one of gigabytes."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        extended = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                    tarfile.SOLARIS_XHDTYPE)  # fmt: skip
        if self.type in extended and self.size > _MAX_HEADER:
            raise _OversizedHeaderError(
                f"a tar header record of {self.size:,} bytes (at most {_MAX_HEADER:,})"
            )
        return super()._proc_member(tarfile_)  # type: ignore[misc]


def _safe_name(archive: Path, name: str) -> str:
    """The member's path, normalised and checked to stay inside the target."""
    if not name or "\x00" in name:
        raise HostileArchiveError(archive, f"member with an empty or NUL-containing name {name!r}")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise HostileArchiveError(archive, f"member {name!r} has an absolute path")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise HostileArchiveError(archive, f"member {name!r} climbs out with '..'")
    if not parts:
        return ""
    return "/".join(parts)


def _inside(rel: str) -> bool:
    norm = posixpath.normpath(rel)
    return not (norm.startswith("../") or norm == ".." or posixpath.isabs(norm))


_RESERVED_TOP = (RECORD_NAME, LOCK_NAME)


def _check_top(archive: Path, rel: str) -> None:
    top = rel.split("/", 1)[0]
    if top in _RESERVED_TOP or top.startswith(".amasskit") or top.endswith((".partial", ".old")):
        raise HostileArchiveError(
            archive, f"member {rel!r} would collide with amasskit's own records and staging at the target"
        )


def _check_clash(archive: Path, rel: str, kind: str, kinds: dict[str, str]) -> None:
    """A member may not sit below a file or a link, nor turn a folder into a file (or the reverse)."""
    parts = rel.split("/")
    for depth in range(1, len(parts)):
        above = "/".join(parts[:depth])
        if kinds.get(above, "dir") != "dir":
            raise HostileArchiveError(
                archive, f"conflicting members: {rel!r} would be written through the {kinds[above]} {above!r}"
            )
    before = kinds.get(rel)
    if before is not None and (before != kind or kind == "symbolic link"):  # a file or folder again is fine
        raise HostileArchiveError(archive, f"conflicting members: {rel!r} is both a {before} and a {kind}")


def _extract(archive: Path, tar: tarfile.TarFile, staging: Path, limit: int) -> tuple[list[str], int, int]:
    """Write every member of ``tar`` below ``staging``; returns (top-level names, files, bytes).

    Raises:
        HostileArchiveError: a member escaping the target, clashing with another, or a device file or FIFO.
        DecompressionBombError: the members add up to more than ``limit`` bytes.
    """
    tops: dict[str, None] = {}
    files = size = 0
    symlinks: list[tuple[str, str]] = []
    kinds: dict[str, str] = {}  # what each path was extracted as
    members = iter(tar)
    while True:
        try:
            member = next(members)
        except StopIteration:
            break
        except _OversizedHeaderError as exc:
            raise DecompressionBombError(archive, str(exc)) from None
        rel = _safe_name(archive, member.name)
        if not rel:
            continue
        _check_top(archive, rel)
        tops.setdefault(rel.split("/", 1)[0], None)
        dest = staging / rel
        if member.isdev() or member.isfifo():
            raise HostileArchiveError(archive, f"member {member.name!r} is a device file or FIFO")
        kind = "dir" if member.isdir() else "symbolic link" if member.issym() else "file"
        _check_clash(archive, rel, kind, kinds)
        if member.issym():
            target = member.linkname
            if posixpath.isabs(target) or not _inside(posixpath.join(posixpath.dirname(rel), target)):
                raise HostileArchiveError(
                    archive, f"symbolic link {member.name!r} -> {target!r} leaves the target"
                )
            symlinks.append((rel, target))
            kinds[rel] = kind
            continue
        if member.islnk():
            link = _safe_name(archive, member.linkname)
            if kinds.get(link) != "file":
                raise HostileArchiveError(
                    archive,
                    f"hard link {member.name!r} -> {member.linkname!r} points at no earlier file inside",
                )
            linked = (staging / link).stat().st_size
            if size + linked > limit:
                raise DecompressionBombError(archive, f"unpacks to more than {limit:,} bytes (the limit)")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staging / link, dest)
            kinds[rel] = kind
            files += 1
            size += linked
            continue
        if member.isdir():
            dest.mkdir(parents=True, exist_ok=True)
            kinds[rel] = kind
            continue
        if not member.isfile():
            raise HostileArchiveError(
                archive, f"member {member.name!r} has an unsupported type {member.type!r}"
            )
        if size + member.size > limit:  # before a byte of it is written; a sparse member counts in full
            raise DecompressionBombError(
                archive, f"member {member.name!r} ({member.size:,} bytes) takes the archive past {limit:,} bytes, "
                "the limit (max_ratio times the archive's size, at most max_bytes; raise them if it is genuine)"
            )  # fmt: skip
        dest.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        if source is None:
            raise CorruptArchiveError(archive, f"member {member.name!r} has no data")
        with dest.open("wb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
        os.utime(dest, (member.mtime, member.mtime))
        kinds[rel] = kind
        files += 1
        size += member.size
    # symbolic links last: nothing is written after them, and each must resolve inside
    root = os.path.realpath(staging)
    for rel, target in symlinks:
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, dest)
    for rel, target in symlinks:
        resolved = os.path.realpath(staging / rel)
        if os.path.commonpath([root, resolved]) != root:
            raise HostileArchiveError(
                archive, f"symbolic link {rel!r} -> {target!r} resolves outside the target"
            )
    return list(tops), files, size


# ---------------------------------------------------------------------------------------------- one archive


def _verify(
    folders: Iterable[str], where: Path, entry: ArchiveChecksum | None
) -> tuple[bool | None, dict[str, str]]:
    checksums = {name: md5_dir(where / name) for name in folders if (where / name).is_dir()}
    if entry is None:
        return None, checksums
    return checksums.get(entry.unpacks_to) == entry.md5_dir, checksums


def unpack_archive(
    archive: str | os.PathLike[str],
    to: str | os.PathLike[str],
    *,
    verify: bool = False,
    checksums: Mapping[str, ArchiveChecksum] | None = None,
    decompressor: Decompressor = "auto",
    threads: int = 1,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> ArchiveResult:
    """Unpack one archive into ``to`` (see the module docstring); never raises for a bad archive, reports it.

    Takes no lock: :func:`unpack_archives` holds the target's lock around its calls.

    Args:
        archive: a ``.tar.bz2`` (any tar compression Python reads works too).
        to: the target folder; created if missing.
        verify: compare each unpacked folder with ``checksums`` (default: the AMASS release table).
        checksums: archive name -> expected checksum.
        decompressor: ``auto`` (a parallel tool when installed), ``python``, ``lbzip2`` or ``pbzip2``.
        threads: threads for the parallel tool.
        progress: called with the archive bytes read so far.
        overwrite: replace top-level folders at the target that amasskit did not unpack (by default such a folder
            fails the archive, and is left as it was).
        max_ratio: at most this many times the archive's size unpacked (None: no ratio limit).
        max_bytes: at most this many bytes unpacked (None: no limit).
    """
    path = user_path(archive)
    target = user_path(to)
    start = time.perf_counter()
    tool = find_decompressor(decompressor)
    staging = target / f".{path.name}.partial"
    try:
        target.mkdir(parents=True, exist_ok=True)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        limit = _limit(path, max_ratio, max_bytes)
        try:
            with _tar_stream(path, tool, threads, progress, limit) as (tar, counter):
                folders, files, size = _extract(path, tar, staging, limit)
        except ArchiveError:
            raise
        except _OversizedHeaderError as exc:  # tarfile reads the first header on opening
            raise DecompressionBombError(path, str(exc)) from None
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, FileNotFoundError) and not path.exists():
                raise ArchiveError(path, "no such archive") from None
            raise CorruptArchiveError(path, f"truncated or corrupt archive: {exc}") from None
        if not folders:
            raise CorruptArchiveError(path, "holds no files")
        verified: bool | None = None
        sums: dict[str, str] = {}
        if verify:
            table = checksums if checksums is not None else load_checksum_table()
            verified, sums = _verify(folders, staging, table.get(path.name))
        owned = {f for entry in _load_record(target)["archives"].values() for f in entry.get("folders", ())}
        foreign = [n for n in folders if (target / n).exists() or (target / n).is_symlink()]
        foreign = [n for n in foreign if n not in owned and not overwrite]
        if foreign:
            raise OutputExistsError(
                f"{path}: {', '.join(str(target / n) for n in foreign)} exists and was not unpacked by amasskit; "
                "move it away, or pass overwrite (--overwrite) to replace it"
            )
        for name in folders:  # into place, one atomic exchange (or rename) per top-level entry
            final = target / name
            if final.is_symlink() or final.is_file():
                final.unlink()
            replace_dir(staging / name, final)
        shutil.rmtree(staging)
        error = None
        if verified is False:
            expected = (checksums or load_checksum_table())[path.name]
            error = (
                f"ChecksumMismatchError: {path}: {expected.unpacks_to} has md5_dir "
                f"{sums.get(expected.unpacks_to, 'missing')}, the release table says {expected.md5_dir}"
            )
        return ArchiveResult(
            archive=str(path),
            status="unpacked",
            folders=tuple(folders),
            files=files,
            bytes=size,
            verified=verified,
            checksums=sums,
            error=error,
            decompressor=tool,
            seconds=time.perf_counter() - start,
            archive_md5=counter.md5.hexdigest(),
        )
    except (AmassKitError, OSError) as exc:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        message = str(exc) if isinstance(exc, AmassKitError) else f"{path}: {exc}"
        return ArchiveResult(
            archive=str(path),
            status="failed",
            error=f"{type(exc).__name__}: {message}",
            decompressor=tool,
            seconds=time.perf_counter() - start,
        )


# ---------------------------------------------------------------------------------------------- many archives


def _limit(path: Path, max_ratio: float | None, max_bytes: int | None) -> int:
    """The most bytes the archive at ``path`` may unpack to."""
    limit = float("inf") if max_bytes is None else float(max_bytes)
    if max_ratio is not None:
        with contextlib.suppress(OSError):
            limit = min(limit, max(max_ratio * path.stat().st_size, float(_MIN_LIMIT)))
    return int(min(limit, float(1 << 62)))


def _load_record(target: Path) -> dict[str, Any]:
    try:
        data = json.loads((target / RECORD_NAME).read_text())
        return data if isinstance(data, dict) and isinstance(data.get("archives"), dict) else {"archives": {}}
    except (OSError, ValueError):
        return {"archives": {}}


def _save_record(target: Path, record: dict[str, Any]) -> None:
    with atomic_open(target / RECORD_NAME) as fp:
        fp.write(json.dumps(record, indent=1, sort_keys=True).encode())


def _identity(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"archive_size": st.st_size, "archive_mtime_ns": st.st_mtime_ns}


def _already_done(path: Path, target: Path, entry: dict[str, Any] | None) -> bool:
    if not entry:
        return False
    try:
        same = all(entry.get(k) == v for k, v in _identity(path).items())
    except OSError:
        return False
    return same and bool(entry.get("folders")) and all((target / f).exists() for f in entry["folders"])


def _worker(
    archive: str,
    to: str,
    verify: bool,
    table: dict[str, Any] | None,
    tool: Decompressor,
    threads: int,
    queue: Any,
    index: int,
    options: dict[str, Any],
) -> ArchiveResult:
    checksums = load_checksum_table(table) if table is not None else None
    return unpack_archive(
        archive,
        to,
        verify=verify,
        checksums=checksums,
        decompressor=tool,
        threads=threads,
        progress=(lambda n: queue.put((index, n))) if queue is not None else None,
        **options,
    )


def unpack_archives(
    archives: Iterable[str | os.PathLike[str]],
    to: str | os.PathLike[str],
    *,
    workers: int | None = None,
    verify: bool = False,
    checksums: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    decompressor: Decompressor = "auto",
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    wait: float = 0.0,
) -> UnpackReport:
    """Unpack many archives into ``to``, in parallel; bad archives are reported and the rest carry on.

    Args:
        archives: archive paths.
        to: the target folder.
        workers: archives unpacked at once (default: all cores); a parallel decompressor gets the cores left over.
        verify: check each unpacked folder against the checksum table; archives not in the table are unpacked and
            reported as unverified (``verified=None``), not refused.
        checksums: the table (a JSON path or mapping in the release table's form); default: the AMASS release's.
        decompressor: see :func:`find_decompressor`.
        force: unpack again even archives the record says are done.
        progress: called as ``progress(index, bytes_read)`` for the archive at ``index``.
        overwrite, max_ratio, max_bytes: see :func:`unpack_archive`.
        wait: seconds to wait for another unpack into the same target to finish (0: refuse at once).

    Returns:
        The report; ``report.ok`` is False when an archive failed or did not match its checksum.

    Raises:
        BusyError: another run is unpacking into ``to``.
    """
    target = user_path(to)
    target.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target / LOCK_NAME, what=f"unpack into {target}", wait=wait):
        return _unpack_locked(archives, target, workers=workers, verify=verify, checksums=checksums,
                              decompressor=decompressor, force=force, progress=progress,
                              options={"overwrite": overwrite, "max_ratio": max_ratio, "max_bytes": max_bytes})  # fmt: skip


def _unpack_locked(
    archives: Iterable[str | os.PathLike[str]],
    target: Path,
    *,
    workers: int | None,
    verify: bool,
    checksums: str | os.PathLike[str] | Mapping[str, Any] | None,
    decompressor: Decompressor,
    force: bool,
    progress: Callable[[int, int], None] | None,
    options: dict[str, Any],
) -> UnpackReport:
    for leftover in target.glob(".*.partial"):  # staging a killed run left
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
    paths = [user_path(a) for a in archives]
    table_source: dict[str, Any] | None = None
    if checksums is not None:
        table_source = (
            dict(checksums)
            if isinstance(checksums, Mapping)
            else json.loads(user_path(checksums).read_text())
        )
    table = load_checksum_table(table_source)
    tool = find_decompressor(decompressor)
    record = _load_record(target)
    results: dict[int, ArchiveResult] = {}
    todo: list[int] = []
    for i, path in enumerate(paths):
        entry = record["archives"].get(path.name)
        if not force and _already_done(path, target, entry):
            assert entry is not None
            verified = entry.get("verified")
            sums = entry.get("checksums") or {}
            if verify and verified is not True and path.name in table:
                # unpacked before without checking, or found not to match another table: check against this one
                verified, sums = _verify(entry["folders"], target, table[path.name])
                entry.update(verified=verified, checksums=sums)
                _save_record(target, record)
            error = (
                None
                if verified is not False
                else f"ChecksumMismatchError: {path}: unpacked before, and its folders did not match the checksum "
                "table when checked (checked again with --verify against the table given: --checksums FILE)"
            )
            if error is not None:
                logger.error("%s: skipped (%s)", path.name, error)
            results[i] = ArchiveResult(
                archive=str(path),
                status="skipped",
                folders=tuple(entry["folders"]),
                files=int(entry.get("files", 0)),
                bytes=int(entry.get("bytes", 0)),
                verified=verified,
                checksums=sums,
                error=error,
                decompressor=str(entry.get("decompressor", "")),
                archive_md5=entry.get("archive_md5"),
            )
        else:
            todo.append(i)
    cores = os.cpu_count() or 1
    n_workers = max(1, min(workers or cores, len(todo) or 1))
    threads = max(1, (workers or cores) // n_workers)
    todo.sort(key=lambda i: -paths[i].stat().st_size if paths[i].exists() else 0)  # largest first

    def record_result(i: int, result: ArchiveResult) -> None:
        results[i] = result
        if result.status == "unpacked":
            entry = {
                k: v for k, v in asdict(result).items() if k not in ("archive", "status", "error", "seconds")
            }
            entry.update(_identity(paths[i]), when=time.strftime("%Y-%m-%dT%H:%M:%S"))
            record["archives"][paths[i].name] = entry
            _save_record(target, record)
        level = logging.INFO if result.ok else logging.ERROR
        logger.log(
            level, "%s: %s%s", paths[i].name, result.status, f" ({result.error})" if result.error else ""
        )

    if n_workers == 1 or len(todo) <= 1:
        for i in todo:
            cb = (lambda n, i=i: progress(i, n)) if progress is not None else None
            record_result(
                i,
                unpack_archive(
                    paths[i],
                    target,
                    verify=verify,
                    checksums=table,
                    decompressor=tool,
                    threads=threads,
                    progress=cb,
                    **options,
                ),
            )
    else:
        context = worker_context()
        with (
            context.Manager() as manager,
            ProcessPoolExecutor(n_workers, mp_context=context, initializer=exit_with_parent) as pool,
        ):
            queue = manager.Queue() if progress is not None else None
            futures = {
                pool.submit(
                    _worker,
                    str(paths[i]),
                    str(target),
                    verify,
                    table_source,
                    tool,
                    threads,
                    queue,
                    i,
                    options,
                ): i
                for i in todo
            }
            pending = set(futures)
            while pending:
                done = {f for f in pending if f.done()}
                for future in done:
                    record_result(futures[future], future.result())
                pending -= done
                if queue is not None:
                    while not queue.empty():
                        index, count = queue.get()
                        assert progress is not None
                        progress(index, count)
                if pending:
                    time.sleep(0.05)
    return UnpackReport(target=target, results=[results[i] for i in range(len(paths))])
