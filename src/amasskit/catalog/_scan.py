"""Scanning a tree into the catalog: :func:`scan` walks it (symlinks followed, loops guarded, hidden folders such as
unpack staging skipped), reads only what changed since the last scan (by size and modification time), in parallel
worker processes, and writes in small transactions, so a killed scan keeps everything recorded before it stopped and
the next scan carries on. Files that fail to read go to a ``problems`` table with their error; shape and stage-i
files to ``skipped``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._util.paths import user_path
from .._util.processes import worker_context
from ..choices import HashKind
from ..errors import AmassFileError, CatalogError, NotMotionFileError
from ..io import NpzArchive, header_from_archive
from ..layouts import sequence_name
from ._db import _COMMIT_EVERY, DEFAULT_DB_NAME, connect
from ._names import canonical_dataset, is_known_dataset

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanReport:
    """What a scan did.

    Attributes:
        root, db: the tree and the database.
        seen: npz files found; read: files read this time (new or changed); unchanged: files not read again.
        added, updated, removed: catalog rows added, re-read, and dropped (files gone).
        problems, skipped: files that failed to read / non-motion files, among those read this time.
        seconds: wall time.
    """

    root: Path
    db: Path
    seen: int
    read: int
    unchanged: int
    added: int
    updated: int
    removed: int
    problems: int
    skipped: int
    seconds: float


# ---------------------------------------------------------------------------------------------- walking


def _walk(root: Path) -> Iterator[tuple[str, int, int]]:
    """``(relative path, size, mtime_ns)`` of every ``*.npz`` below ``root``; symlinks followed, loops guarded,
    hidden folders skipped."""
    seen_dirs: set[tuple[int, int]] = set()
    stack = [(str(root), "")]
    while stack:
        folder, rel = stack.pop()
        try:
            st = os.stat(folder)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            logger.debug("%s: already visited (symlink loop or alias), skipped", folder)
            continue
        seen_dirs.add(key)
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            logger.warning("%s: cannot list: %s", folder, exc)
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            child = f"{rel}/{name}" if rel else name
            try:
                if entry.is_dir():  # follows symlinks
                    stack.append((entry.path, child))
                elif name.lower().endswith(".npz") and entry.is_file():
                    est = entry.stat()
                    yield child, est.st_size, est.st_mtime_ns
            except OSError:
                continue  # a dangling symlink


def _place(rel: str, root_name: str) -> tuple[str, str | None, str]:
    """``(dataset folder, subject, sequence)`` from ``<Dataset>/<Subject>/<sequence>.npz``.

    Deeper trees: the top-most folder named as an AMASS sub-dataset (any spelling) is the dataset and the file's own
    folder the subject (``SSM_synced/resynced/20160330_03333/x.npz``: ``SSM_synced``, ``20160330_03333``); with no
    such folder, the last three levels (a tree scanned from above the release: ``smplh/CMU/01/x.npz``).
    """
    parts = rel.split("/")
    stem = sequence_name(parts[-1])
    known = next((k for k, part in enumerate(parts[:-1]) if is_known_dataset(part)), None)
    if known is not None:
        return parts[known], (parts[-2] if known < len(parts) - 2 else None), stem
    if len(parts) >= 3:
        return parts[-3], parts[-2], stem
    if len(parts) == 2:
        return parts[0], None, stem
    return root_name, None, stem


# ---------------------------------------------------------------------------------------------- reading


def _scan_one(root: str, rel: str, size: int, mtime_ns: int, hash_kind: str) -> tuple[str, Any]:
    """Read one file's header: ``("file", row)``, ``("skipped", row)`` or ``("problem", row)``."""
    path = os.path.join(root, rel)
    now = time.time()
    try:
        with NpzArchive(path) as npz:
            header = header_from_archive(npz)
            content = npz.fingerprint() if hash_kind == "crc" else _md5_file(path)
    except NotMotionFileError as exc:
        return "skipped", (rel, size, mtime_ns, exc.kind or "other")
    except AmassFileError as exc:
        return "problem", (rel, size, mtime_ns, type(exc).__name__, exc.reason, now)
    except OSError as exc:
        return "problem", (rel, size, mtime_ns, type(exc).__name__, str(exc), now)
    dataset_dir, subject, sequence = _place(rel, os.path.basename(root))
    row = (
        rel,
        canonical_dataset(dataset_dir),
        dataset_dir,
        subject,
        sequence,
        size,
        mtime_ns,
        content,
        hash_kind,
        header.num_frames,
        header.fps,
        header.duration,
        header.gender.value,
        header.model.value,
        header.num_betas,
        int(header.has_dmpls),
        int(header.synthetic),
        now,
    )
    return "file", row


def _scan_chunk(root: str, chunk: list[tuple[str, int, int]], hash_kind: str) -> list[tuple[str, Any]]:
    return [_scan_one(root, rel, size, mtime, hash_kind) for rel, size, mtime in chunk]


def _md5_file(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fp:
        while chunk := fp.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def scan(
    root: str | os.PathLike[str],
    db: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    hash_kind: HashKind = "crc",
    progress: Callable[[int, int], None] | None = None,
) -> ScanReport:
    """Scan (or rescan) the tree at ``root`` into the catalog ``db``.

    Args:
        root: the tree, ``<Dataset>/<Subject>/<sequence>.npz`` below it.
        db: the SQLite file; default ``root/amasskit-catalog.sqlite``. A catalog belongs to one root.
        workers: processes reading headers (default: all cores; 1 reads in this process).
        hash_kind: ``crc`` (default: a content hash from the zip directory, no extra I/O) or ``md5`` (of the whole
            file, as the release's file tables record it; reads every byte).
        progress: called as ``progress(done, total)`` over the files being read.

    Raises:
        CatalogError: ``db`` is not a catalog, or belongs to another root.
        NotADirectoryError: ``root`` is not a folder.
    """
    start = time.perf_counter()
    root_path = user_path(root)
    if not root_path.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    db_path = user_path(db) if db is not None else root_path / DEFAULT_DB_NAME
    con = connect(db_path)
    try:
        recorded_root = con.execute("SELECT value FROM meta WHERE key='root'").fetchone()
        if recorded_root is not None and recorded_root[0] != str(root_path):
            raise CatalogError(
                f"{db_path}: this catalog is of {recorded_root[0]}, not {root_path}; use another --db"
            )
        with con:
            con.execute("INSERT OR REPLACE INTO meta VALUES('root', ?)", (str(root_path),))

        found = {rel: (size, mtime) for rel, size, mtime in _walk(root_path)}
        known: dict[str, tuple[int, int, str]] = {}
        for table in ("files", "problems", "skipped"):
            for rel, size, mtime in con.execute(f"SELECT path, size, mtime_ns FROM {table}"):
                known[rel] = (size, mtime, table)
        gone = [rel for rel in known if rel not in found]
        todo = [
            (rel, s, m) for rel, (s, m) in found.items() if known.get(rel, (None, None, ""))[:2] != (s, m)
        ]
        todo.sort()
        with con:
            for table in ("files", "problems", "skipped"):
                con.executemany(f"DELETE FROM {table} WHERE path=?", [(r,) for r in gone])
            con.executemany("DELETE FROM split_files WHERE path=?", [(r,) for r in gone])
            # unchanged files placed by an earlier rule (the last three levels of any deep tree) are placed anew
            moved = []
            for rel, dataset_dir, subject, sequence in con.execute(
                "SELECT path, dataset_dir, subject, sequence FROM files"
            ).fetchall():
                place = _place(rel, root_path.name)
                if place != (dataset_dir, subject, sequence):
                    moved.append((canonical_dataset(place[0]), *place, rel))
            con.executemany(
                "UPDATE files SET dataset=?, dataset_dir=?, subject=?, sequence=? WHERE path=?", moved
            )

        counts = {"file": 0, "problem": 0, "skipped": 0, "added": 0, "updated": 0}
        pending: list[tuple[str, Any]] = []
        last_commit = time.monotonic()

        def flush() -> None:
            nonlocal last_commit
            with con:
                for kind, row in pending:
                    rel = row[0]
                    previous = known.get(rel)
                    if previous is not None and previous[2] != {"file": "files", "problem": "problems"}.get(
                        kind, "skipped"
                    ):
                        con.execute(f"DELETE FROM {previous[2]} WHERE path=?", (rel,))
                    if kind == "file":
                        con.execute(f"INSERT OR REPLACE INTO files VALUES({','.join('?' * len(row))})", row)
                        counts["updated" if previous is not None and previous[2] == "files" else "added"] += 1
                    elif kind == "problem":
                        con.execute("INSERT OR REPLACE INTO problems VALUES(?,?,?,?,?,?)", row)
                    else:
                        con.execute("INSERT OR REPLACE INTO skipped VALUES(?,?,?,?)", row)
                    counts[kind] += 1
            pending.clear()
            last_commit = time.monotonic()

        def take(results: Iterable[tuple[str, Any]], done: int) -> None:
            pending.extend(results)
            if len(pending) >= _COMMIT_EVERY or time.monotonic() - last_commit > 1.0:
                flush()
            if progress is not None:
                progress(done, len(todo))

        n_workers = max(1, workers or os.cpu_count() or 1)
        if n_workers == 1 or len(todo) < 64:
            for k, (rel, size, mtime) in enumerate(todo):
                take([_scan_one(str(root_path), rel, size, mtime, hash_kind)], k + 1)
        else:
            size_of_chunk = max(16, min(256, len(todo) // (n_workers * 8)))
            chunks = [todo[i : i + size_of_chunk] for i in range(0, len(todo), size_of_chunk)]
            context = worker_context()
            done = 0
            with ProcessPoolExecutor(n_workers, mp_context=context) as pool:
                futures = [pool.submit(_scan_chunk, str(root_path), chunk, hash_kind) for chunk in chunks]
                for future in as_completed(futures):
                    results = future.result()
                    done += len(results)
                    take(results, done)
        flush()
        with con:
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES('scanned', ?)", (time.strftime("%Y-%m-%dT%H:%M:%S"),)
            )
    finally:
        con.close()
    report = ScanReport(
        root=root_path,
        db=db_path,
        seen=len(found),
        read=len(todo),
        unchanged=len(found) - len(todo),
        added=counts["added"],
        updated=counts["updated"],
        removed=sum(1 for rel in gone if known[rel][2] == "files"),
        problems=counts["problem"],
        skipped=counts["skipped"],
        seconds=time.perf_counter() - start,
    )
    logger.info(
        "catalog %s: %d files seen, %d read, %d problems, %d removed in %.2f s",
        db_path,
        report.seen,
        report.read,
        report.problems,
        report.removed,
        report.seconds,
    )
    return report
