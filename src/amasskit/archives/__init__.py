"""Unpacking the AMASS release archives: parallel, safe against hostile members, atomic, resumable, verified.

* :func:`unpack_archives` / :func:`unpack_archive` - unpack into a target folder, reporting each archive.
* :func:`md5_dir` / :func:`load_checksum_table` - the release's folder checksums (the table ships with amasskit).
"""

from ._checksum import ArchiveChecksum, load_checksum_table, md5_dir
from ._unpack import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_RATIO,
    LOCK_NAME,
    RECORD_NAME,
    ArchiveResult,
    UnpackReport,
    find_decompressor,
    unpack_archive,
    unpack_archives,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_RATIO",
    "LOCK_NAME",
    "RECORD_NAME",
    "ArchiveChecksum",
    "ArchiveResult",
    "UnpackReport",
    "find_decompressor",
    "load_checksum_table",
    "md5_dir",
    "unpack_archive",
    "unpack_archives",
]
