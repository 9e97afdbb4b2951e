"""Checksums of unpacked folders, as the AMASS release table records them, and that table.

``md5_dir`` is the recursive folder hash the release table (``amass_archives.json``) uses: one md5 fed, for every entry
of a folder in order of its lower-cased path, the entry's name and then a file's bytes or, for a sub-folder, the same
recursively. The folder's own name is not hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["ArchiveChecksum", "load_checksum_table", "md5_dir"]

_CHUNK = 1 << 20


def _update(folder: str, digest: Any) -> None:
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.path.lower())
    for entry in entries:
        digest.update(entry.name.encode())
        if entry.is_file():
            with open(entry.path, "rb") as fp:
                while chunk := fp.read(_CHUNK):
                    digest.update(chunk)
        elif entry.is_dir():
            _update(entry.path, digest)


def md5_dir(folder: str | os.PathLike[str]) -> str:
    """The release table's recursive md5 of ``folder`` (hex)."""
    path = os.fspath(folder)
    if not os.path.isdir(path):
        raise NotADirectoryError(f"{path}: not a folder")
    digest = hashlib.md5()
    _update(path, digest)
    return digest.hexdigest()


@dataclass(frozen=True)
class ArchiveChecksum:
    """One row of the checksum table: what ``archive`` unpacks to, and that folder's :func:`md5_dir`."""

    archive: str
    unpacks_to: str
    md5_dir: str


def load_checksum_table(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
) -> dict[str, ArchiveChecksum]:
    """The checksum table, by archive file name.

    Args:
        source: a JSON file or an already-parsed mapping of the form ``{"archives": {"CMU.tar.bz2":
            {"unpacks_to": "CMU", "md5_dir": "..."}}}``; default: the AMASS SMPL+H release table shipped with amasskit.

    Raises:
        ValueError: the table is not of that form.
    """
    if source is None:
        text = resources.files("amasskit.archives").joinpath("amass_archives.json").read_text()
        data: Any = json.loads(text)
    elif isinstance(source, Mapping):
        data = source
    else:
        data = json.loads(Path(source).read_text())
    try:
        return {
            name: ArchiveChecksum(name, str(row["unpacks_to"]), str(row["md5_dir"]))
            for name, row in data["archives"].items()
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"not a checksum table ({{'archives': {{name: {{unpacks_to, md5_dir}}}}}}): {exc}"
        ) from None
