"""The catalog: every motion file of an AMASS tree as one row in SQLite.

:func:`scan` walks a tree (symlinks followed, loops guarded, hidden folders such as unpack staging skipped), reads
only what changed since the last scan (by size and modification time), in parallel worker processes, and writes in
small transactions, so a killed scan keeps everything recorded before it stopped and the next scan carries on.
Files that fail to read go to a ``problems`` table with their error; shape and stage-i files to ``skipped``.

:class:`Catalog` answers queries (sub-dataset, split, gender, model, fps, duration) as plain records or a pandas
DataFrame, summarises per sub-dataset, and records split assignments (no file is moved).

Schema (version 1)::

    meta(key PRIMARY KEY, value)                       schema_version, root, created, scanned
    files(path PRIMARY KEY, dataset, dataset_dir, subject, sequence, size, mtime_ns, content_hash, hash_kind,
          frames, fps, duration, gender, model, num_betas, has_dmpls, synthetic, scanned_at)
    problems(path PRIMARY KEY, size, mtime_ns, error, message, scanned_at)
    skipped(path PRIMARY KEY, size, mtime_ns, kind)
    split_files(scheme, path, split, PRIMARY KEY(scheme, path))
    split_schemes(scheme PRIMARY KEY, definition, unallocated, assigned_at)

Paths are relative to the scanned root, with ``/`` separators.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from .._util.atomic import staged_dir
from .._util.processes import worker_context
from ..errors import AmassFileError, CatalogError, NotMotionFileError
from ..io import NpzArchive, header_from_archive
from ..layouts import sequence_name
from ._names import canonical_dataset
from ._splits import SplitAssignment, SplitScheme, load_scheme

__all__ = [
    "DEFAULT_DB_NAME",
    "SCHEMA_VERSION",
    "Catalog",
    "CatalogRecord",
    "DatasetSummary",
    "Problem",
    "ScanReport",
    "scan",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_DB_NAME = "amasskit-catalog.sqlite"
HashKind = Literal["crc", "md5"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY, dataset TEXT NOT NULL, dataset_dir TEXT NOT NULL, subject TEXT, sequence TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, content_hash TEXT NOT NULL, hash_kind TEXT NOT NULL,
    frames INTEGER NOT NULL, fps REAL NOT NULL, duration REAL NOT NULL, gender TEXT NOT NULL, model TEXT NOT NULL,
    num_betas INTEGER NOT NULL, has_dmpls INTEGER NOT NULL, synthetic INTEGER NOT NULL, scanned_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS files_dataset ON files(dataset);
CREATE TABLE IF NOT EXISTS problems(
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, error TEXT NOT NULL, message TEXT NOT NULL,
    scanned_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS skipped(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS split_files(
    scheme TEXT NOT NULL, path TEXT NOT NULL, split TEXT NOT NULL, PRIMARY KEY(scheme, path));
CREATE INDEX IF NOT EXISTS split_files_split ON split_files(scheme, split);
CREATE TABLE IF NOT EXISTS split_schemes(
    scheme TEXT PRIMARY KEY, definition TEXT NOT NULL, unallocated TEXT NOT NULL, assigned_at REAL NOT NULL);
"""
_COMMIT_EVERY = 256  # rows; and at least once a second


@dataclass(frozen=True)
class CatalogRecord:
    """One motion file as the catalog knows it.

    Attributes:
        path: relative to the catalog root, ``/``-separated.
        dataset: canonical sub-dataset name; ``dataset_dir``: the folder name on disk.
        subject, sequence: subject folder and sequence name.
        size, mtime_ns: the file's size and modification time when scanned.
        content_hash: ``crc`` (sha1 of the members' CRC-32s and sizes) or ``md5`` (of the whole file), per
            ``hash_kind``.
        frames, fps, duration, gender, model, num_betas, has_dmpls, synthetic: from the file's header.
    """

    path: str
    dataset: str
    dataset_dir: str
    subject: str | None
    sequence: str
    size: int
    mtime_ns: int
    content_hash: str
    hash_kind: str
    frames: int
    fps: float
    duration: float
    gender: str
    model: str
    num_betas: int
    has_dmpls: bool
    synthetic: bool
    scanned_at: float


_RECORD_COLUMNS = tuple(f.name for f in fields(CatalogRecord))


@dataclass(frozen=True)
class Problem:
    """A file that failed to read: its error type and message."""

    path: str
    error: str
    message: str


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


@dataclass(frozen=True)
class DatasetSummary:
    """One sub-dataset in :meth:`Catalog.stats`."""

    dataset: str
    files: int
    frames: int
    hours: float
    fps: dict[float, int]
    genders: dict[str, int]


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
    """``(dataset folder, subject, sequence)`` from ``<Dataset>/<Subject>/<sequence>.npz`` (deeper trees: the last
    three levels)."""
    parts = rel.split("/")
    stem = sequence_name(parts[-1])
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


# ---------------------------------------------------------------------------------------------- the database


def _connect(db: Path) -> sqlite3.Connection:
    try:
        con = sqlite3.connect(db, timeout=30.0)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.executescript(_SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise CatalogError(f"{db}: not an amasskit catalog (SQLite says: {exc})") from None
    row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None:
        with con:
            con.execute("INSERT INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))
            con.execute(
                "INSERT OR IGNORE INTO meta VALUES('created', ?)", (time.strftime("%Y-%m-%dT%H:%M:%S"),)
            )
    elif int(row[0]) > SCHEMA_VERSION:
        con.close()
        raise CatalogError(
            f"{db}: catalog schema {row[0]} is newer than this amasskit's ({SCHEMA_VERSION}); upgrade"
        )
    return con


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
    root_path = Path(root).resolve()
    if not root_path.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    db_path = Path(db) if db is not None else root_path / DEFAULT_DB_NAME
    con = _connect(db_path)
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


# ---------------------------------------------------------------------------------------------- queries


class Catalog:
    """An open catalog. Use :meth:`open`; close it (or use ``with``).

    Example::

        with Catalog.open("amass/amasskit-catalog.sqlite") as cat:
            walks = cat.records(dataset="CMU", split="train", scheme="amass-paper", min_duration=2.0)
            df = cat.dataframe(gender="female")
    """

    def __init__(self, con: sqlite3.Connection, path: Path) -> None:
        self._con = con
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Catalog:
        """Open an existing catalog (a database file, or a scanned folder holding ``amasskit-catalog.sqlite``).

        Raises:
            CatalogError: no catalog there, or not a catalog.
        """
        db = Path(path)
        if db.is_dir():
            db = db / DEFAULT_DB_NAME
        if not db.is_file():
            raise CatalogError(f"{db}: no catalog here; run `amasskit catalog DIR` first")
        con = _connect(db)
        if con.execute("SELECT value FROM meta WHERE key='root'").fetchone() is None:
            con.close()
            raise CatalogError(f"{db}: an empty catalog (never scanned)")
        return cls(con, db)

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    @property
    def root(self) -> Path:
        """The scanned tree; ``root / record.path`` is a file."""
        return Path(self._con.execute("SELECT value FROM meta WHERE key='root'").fetchone()[0])

    def __len__(self) -> int:
        return int(self._con.execute("SELECT COUNT(*) FROM files").fetchone()[0])

    # ------------------------------------------------------------ records

    def _where(
        self,
        *,
        dataset: str | Sequence[str] | None,
        split: str | Sequence[str] | None,
        scheme: str | None,
        gender: str | None,
        model: str | None,
        fps: float | None,
        min_fps: float | None,
        max_fps: float | None,
        min_duration: float | None,
        max_duration: float | None,
        subject: str | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []

        def any_of(column: str, value: str | Sequence[str], transform: Callable[[str], str] = str) -> None:
            values = [value] if isinstance(value, str) else list(value)
            clauses.append(f"{column} IN ({','.join('?' * len(values))})")
            args.extend(transform(v) for v in values)

        if dataset is not None:
            any_of("f.dataset", dataset, canonical_dataset)
        if split is not None:
            if scheme is None:
                raise ValueError("selecting by split needs the scheme it belongs to (scheme=...)")
            if self._con.execute("SELECT 1 FROM split_schemes WHERE scheme=?", (scheme,)).fetchone() is None:
                raise CatalogError(
                    f"{self.path}: no split scheme {scheme!r} recorded; run `amasskit split {scheme}`"
                )
            names = [split] if isinstance(split, str) else list(split)
            marks = ",".join("?" * len(names))
            clauses.append(f"f.path IN (SELECT path FROM split_files WHERE scheme=? AND split IN ({marks}))")
            args.append(scheme)
            args.extend(names)
        for column, text in (("f.gender", gender), ("f.model", model), ("f.subject", subject)):
            if text is not None:
                clauses.append(f"{column} = ?")
                args.append(str(text))
        if fps is not None:
            clauses.append("ABS(f.fps - ?) < 0.01")
            args.append(fps)
        bounds = (
            ("f.fps", ">=", min_fps),
            ("f.fps", "<=", max_fps),
            ("f.duration", ">=", min_duration),
            ("f.duration", "<=", max_duration),
        )
        for column, op, bound in bounds:
            if bound is not None:
                clauses.append(f"{column} {op} ?")
                args.append(float(bound))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def records(
        self,
        *,
        dataset: str | Sequence[str] | None = None,
        split: str | Sequence[str] | None = None,
        scheme: str | None = None,
        gender: str | None = None,
        model: str | None = None,
        fps: float | None = None,
        min_fps: float | None = None,
        max_fps: float | None = None,
        min_duration: float | None = None,
        max_duration: float | None = None,
        subject: str | None = None,
    ) -> list[CatalogRecord]:
        """Motion files matching every given condition, ordered by path.

        Args:
            dataset: one or more sub-datasets (canonical names or aliases).
            split, scheme: files assigned to ``split`` (one or several) by the recorded ``scheme``.
            gender, model: ``male``/``female``/``neutral``; ``smplh``/``smplx``.
            fps: frame rate within 0.01 (so 120 matches 120.00004578); min_fps, max_fps: a range.
            min_duration, max_duration: seconds.
            subject: subject folder name.
        """
        where, args = self._where(
            dataset=dataset,
            split=split,
            scheme=scheme,
            gender=gender,
            model=model,
            fps=fps,
            min_fps=min_fps,
            max_fps=max_fps,
            min_duration=min_duration,
            max_duration=max_duration,
            subject=subject,
        )
        rows = self._con.execute(
            f"SELECT {', '.join('f.' + c for c in _RECORD_COLUMNS)} FROM files f{where} ORDER BY f.path", args
        )
        out = []
        for row in rows:
            values = dict(zip(_RECORD_COLUMNS, row, strict=True))
            values["has_dmpls"] = bool(values["has_dmpls"])
            values["synthetic"] = bool(values["synthetic"])
            out.append(CatalogRecord(**values))
        return out

    def paths(self, **query: Any) -> list[Path]:
        """Absolute paths of the files :meth:`records` selects."""
        root = self.root
        return [root / r.path for r in self.records(**query)]

    def dataframe(self, **query: Any) -> Any:
        """:meth:`records` as a pandas DataFrame (needs pandas: ``pip install 'amasskit[pandas]'``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Catalog.dataframe needs pandas: pip install 'amasskit[pandas]'") from None
        records = self.records(**query)
        return pd.DataFrame([r.__dict__ for r in records], columns=list(_RECORD_COLUMNS))

    def problems(self) -> list[Problem]:
        """Files that failed to read at the last scan."""
        return [
            Problem(*row)
            for row in self._con.execute("SELECT path, error, message FROM problems ORDER BY path")
        ]

    def skipped(self) -> dict[str, str]:
        """Non-motion files (relative path -> kind: ``shape`` / ``stagei``)."""
        return dict(self._con.execute("SELECT path, kind FROM skipped ORDER BY path").fetchall())

    def stats(self, **query: Any) -> list[DatasetSummary]:
        """Per sub-dataset: files, frames, hours, frame rates and genders (of the files ``query`` selects)."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.records(**query):
            d = out.setdefault(r.dataset, {"files": 0, "frames": 0, "seconds": 0.0, "fps": {}, "genders": {}})
            d["files"] += 1
            d["frames"] += r.frames
            d["seconds"] += r.duration
            fps = round(r.fps, 4)
            d["fps"][fps] = d["fps"].get(fps, 0) + 1
            d["genders"][r.gender] = d["genders"].get(r.gender, 0) + 1
        return [
            DatasetSummary(
                name,
                d["files"],
                d["frames"],
                d["seconds"] / 3600,
                dict(sorted(d["fps"].items())),
                dict(sorted(d["genders"].items())),
            )
            for name, d in sorted(out.items())
        ]

    # ------------------------------------------------------------ splits

    def assign_split(self, scheme: SplitScheme | str | os.PathLike[str]) -> SplitAssignment:
        """Apply a split scheme to every file and record the assignment (replacing an earlier one of that name).

        Returns:
            The assignment; ``unallocated`` names the sub-datasets (and file counts) the scheme left out.
        """
        chosen = scheme if isinstance(scheme, SplitScheme) else load_scheme(scheme)
        rows = self._con.execute("SELECT path, dataset, subject FROM files ORDER BY path").fetchall()
        assignment = chosen.assign(rows)
        with self._con:
            self._con.execute("DELETE FROM split_files WHERE scheme=?", (chosen.name,))
            self._con.executemany(
                "INSERT INTO split_files VALUES(?,?,?)",
                [(chosen.name, p, s) for p, s in assignment.splits.items()],
            )
            self._con.execute(
                "INSERT OR REPLACE INTO split_schemes VALUES(?,?,?,?)",
                (
                    chosen.name,
                    json.dumps(chosen.definition, sort_keys=True),
                    json.dumps(assignment.unallocated),
                    time.time(),
                ),
            )
        if assignment.unallocated:
            logger.warning(
                "split %s leaves %d files of %s unallocated",
                chosen.name,
                sum(assignment.unallocated.values()),
                ", ".join(assignment.unallocated),
            )
        return assignment

    def schemes(self) -> list[str]:
        """Split schemes recorded in this catalog."""
        return [r[0] for r in self._con.execute("SELECT scheme FROM split_schemes ORDER BY scheme")]

    def split_counts(self, scheme: str) -> dict[str, int]:
        """Files per split of a recorded scheme (files deleted since are not counted)."""
        rows = self._con.execute(
            "SELECT s.split, COUNT(*) FROM split_files s JOIN files f ON f.path = s.path WHERE s.scheme=? "
            "GROUP BY s.split ORDER BY s.split",
            (scheme,),
        )
        return dict(rows.fetchall())

    def link_split(
        self, scheme: str, out: str | os.PathLike[str], *, overwrite: bool = False
    ) -> dict[str, int]:
        """Materialise a recorded split as symlinks: ``out/<split>/<relative path>`` -> the catalogued file.

        Built beside ``out`` and renamed into place. Returns files linked per split.

        Raises:
            FileExistsError: ``out`` exists and ``overwrite`` is false.
        """
        target = Path(out)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} already exists; pass overwrite=True (--overwrite) to replace it")
        if self._con.execute("SELECT 1 FROM split_schemes WHERE scheme=?", (scheme,)).fetchone() is None:
            raise CatalogError(
                f"{self.path}: no split scheme {scheme!r} recorded; run `amasskit split {scheme}`"
            )
        root = self.root
        counts: dict[str, int] = {}
        rows = self._con.execute(
            "SELECT s.split, s.path FROM split_files s JOIN files f ON f.path = s.path WHERE s.scheme=?",
            (scheme,),
        )
        with staged_dir(target) as staging:
            for split, rel in rows:
                link = staging / split / rel
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(root / rel, link)
                counts[split] = counts.get(split, 0) + 1
        return dict(sorted(counts.items()))
