"""Reading and writing AMASS motion files.

* :func:`read` - one motion file of either release into a :class:`~amasskit.Sequence`.
* :func:`read_header` - frame count, fps, gender and model without reading pose data.
* :func:`classify_path` - motion, shape or stage-i file, by name.
* :func:`write` - a sequence as a release-layout npz, atomically.
* :class:`NpzArchive` - safe, lazy, pickle-free access to the arrays of any npz.
"""

from ._npz import ArrayInfo, NpzArchive
from ._reader import META_KEY, FileKind, SequenceHeader, classify_path, header_from_archive, read, read_header
from ._writer import FORMAT_VERSION, sequence_arrays, write

__all__ = [
    "FORMAT_VERSION",
    "META_KEY",
    "ArrayInfo",
    "FileKind",
    "NpzArchive",
    "SequenceHeader",
    "classify_path",
    "header_from_archive",
    "read",
    "read_header",
    "sequence_arrays",
    "write",
]
