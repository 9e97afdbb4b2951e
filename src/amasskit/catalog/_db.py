"""The catalog database: its schema, its records and opening it.

Schema (version 2; version 1 catalogs are migrated when opened)::

    meta(key PRIMARY KEY, value)                       schema_version, root, created, scanned
    files(path PRIMARY KEY, dataset, dataset_dir, subject, sequence, size, mtime_ns, content_hash, hash_kind,
          frames, fps, duration, gender, model, num_betas, has_dmpls, synthetic, scanned_at)
    problems(path PRIMARY KEY, size, mtime_ns, error, message, scanned_at)
    skipped(path PRIMARY KEY, size, mtime_ns, kind)
    split_files(scheme, path, split, PRIMARY KEY(scheme, path, split))   a file may be in several splits of an
                                                       overlapping scheme (version 1: one split a scheme)
    split_schemes(scheme PRIMARY KEY, definition, unallocated, assigned_at)

Paths are relative to the scanned root, with ``/`` separators.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import CatalogError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
DEFAULT_DB_NAME = "amasskit-catalog.sqlite"

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
    scheme TEXT NOT NULL, path TEXT NOT NULL, split TEXT NOT NULL, PRIMARY KEY(scheme, path, split));
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
class DatasetSummary:
    """One sub-dataset in :meth:`Catalog.stats`."""

    dataset: str
    files: int
    frames: int
    hours: float
    fps: dict[float, int]
    genders: dict[str, int]


def connect(db: Path) -> sqlite3.Connection:
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
    elif int(row[0]) < SCHEMA_VERSION:
        _migrate(con, db)
    return con


def _migrate(con: sqlite3.Connection, db: Path) -> None:
    """Bring an older catalog to :data:`SCHEMA_VERSION` in one transaction (another process may be doing the same:
    the version is read again under the write lock)."""
    con.execute("BEGIN IMMEDIATE")
    try:
        (version,) = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if int(version) < 2:  # split_files keyed by (scheme, path, split): overlapping schemes
            con.execute("ALTER TABLE split_files RENAME TO split_files_v1")
            con.execute("DROP INDEX IF EXISTS split_files_split")
            con.execute(
                "CREATE TABLE split_files(scheme TEXT NOT NULL, path TEXT NOT NULL, split TEXT NOT NULL, "
                "PRIMARY KEY(scheme, path, split))"
            )
            con.execute("INSERT INTO split_files SELECT scheme, path, split FROM split_files_v1")
            con.execute("DROP TABLE split_files_v1")
            con.execute("CREATE INDEX split_files_split ON split_files(scheme, split)")
            logger.info("%s: catalog schema %s migrated to %d", db, version, SCHEMA_VERSION)
        con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
        con.commit()
    except BaseException:
        con.rollback()
        raise
