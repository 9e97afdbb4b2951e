"""Querying a catalog: :class:`Catalog` answers queries (sub-dataset, split, gender, model, fps, duration) as plain
records or a pandas DataFrame, summarises per sub-dataset, and records split assignments (no file is moved)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._util.atomic import staged_dir
from .._util.paths import user_path
from ..errors import CatalogError
from ._db import _RECORD_COLUMNS, DEFAULT_DB_NAME, CatalogRecord, DatasetSummary, Problem, connect
from ._names import canonical_dataset
from ._splits import SplitAssignment, SplitScheme, load_scheme

if TYPE_CHECKING:
    from ._spl import SplReport

logger = logging.getLogger(__name__)


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
        db = user_path(path)
        if db.is_dir():
            db = db / DEFAULT_DB_NAME
        if not db.is_file():
            raise CatalogError(f"{db}: no catalog here; run `amasskit catalog scan DIR` first")
        con = connect(db)
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
        if isinstance(scheme, str) and scheme == "spl":  # the SPL lists matched to this catalog's files
            return self.assign_spl()[0]
        chosen = scheme if isinstance(scheme, SplitScheme) else load_scheme(scheme)
        return self._record(chosen, self._split_rows())

    def assign_spl(self) -> tuple[SplitAssignment, SplReport]:
        """The SPL split (:mod:`amasskit.catalog._spl`): its lists matched to this catalog's files, recorded as scheme
        ``spl`` with the report of what matched (kept with the scheme's definition)."""
        from ._spl import spl_scheme

        rows = self._split_rows()
        chosen, report = spl_scheme(row[0] for row in rows)
        return self._record(chosen, rows), report

    def _split_rows(self) -> list[tuple[str, str, str | None]]:
        return self._con.execute("SELECT path, dataset, subject FROM files ORDER BY path").fetchall()

    def _record(self, chosen: SplitScheme, rows: list[tuple[str, str, str | None]]) -> SplitAssignment:
        """Apply ``chosen`` to ``rows`` and record the assignment under its name."""
        assignment = chosen.assign(rows)
        with self._con:
            self._con.execute("DELETE FROM split_files WHERE scheme=?", (chosen.name,))
            self._con.executemany(
                "INSERT INTO split_files VALUES(?,?,?)",
                [(chosen.name, p, s) for p, s in assignment.pairs()],
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
        target = user_path(out)
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
