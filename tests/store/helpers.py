"""Helpers for the prepare tests: a config with small defaults, and a digest of every file of a store."""

from __future__ import annotations

import hashlib
from pathlib import Path

from amasskit.catalog import Catalog, scan
from amasskit.prepare import PrepareConfig


def digest(folder: Path) -> dict[str, str]:
    """Every file of a store but the run's log (which records timings and worker counts)."""
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "prepare.log"}  # fmt: skip


def config(catalogued: Path, out: Path, **changes: object) -> PrepareConfig:
    base = dict(catalog=str(catalogued), out=str(out), scheme="amass-paper-all", fps=30.0, trim_keep=0.8,
                rotations=1, mirror=True, noise=0.01, seed=3, workers=1)  # fmt: skip
    base.update(changes)
    return PrepareConfig(**base)  # type: ignore[arg-type]


def rescan(root: Path) -> None:
    """Catalog what changed in ``root`` and record the split again."""
    scan(root, workers=1)
    with Catalog.open(root) as cat:
        cat.assign_split("amass-paper-all")
