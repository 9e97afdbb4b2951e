"""Safe, lazy access to the arrays of an ``.npz`` file.

``np.load`` on an npz reads a member only when it is indexed, but offers no way to learn an array's shape without
reading it, and reports problems with messages that do not name the file. :class:`NpzArchive` reads the zip central
directory once, parses an array's ``.npy`` header alone when only its shape is wanted (a few hundred bytes, so a header
scan over 14,000 files never touches pose data), never enables pickle, and turns every failure into a typed
:mod:`amasskit.errors` exception naming the file.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np

from ..errors import (
    ArrayShapeError,
    CorruptFileError,
    MissingKeyError,
    MotionFileNotFoundError,
    PickledDataError,
)

__all__ = ["ArrayInfo", "NpzArchive"]

_MAX_HEADER_SIZE = 10_000
"""Largest ``.npy`` header accepted (numpy's own default); a longer one is treated as hostile."""

_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class ArrayInfo:
    """What an array's ``.npy`` header says, read without its data.

    Attributes:
        shape: the array's shape.
        dtype: its dtype.
        fortran_order: stored column-major.
        compressed: the zip member is deflated (AMASS stores members uncompressed).
        offset: where the member's local header starts in the zip file.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    compressed: bool
    offset: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


class NpzArchive:
    """An open npz file; use as a context manager.

    Args:
        path: the ``.npz`` file.

    Raises:
        MotionFileNotFoundError: ``path`` does not exist or is not a regular file.
        CorruptFileError: not a zip file, or its directory is truncated or damaged.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            what = "is a directory, not an npz file" if self.path.is_dir() else "no such file"
            raise MotionFileNotFoundError(self.path, what)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except _ZIP_ERRORS as exc:
            raise CorruptFileError(
                self.path, f"not a readable npz (zip) file, or truncated: {exc}. Download or unpack it again."
            ) from None
        except OSError as exc:
            raise CorruptFileError(self.path, f"cannot be read: {exc}") from None
        self._members = {
            name[: -len(".npy")] if name.endswith(".npy") else name: info for name, info in self._zip_infos()
        }
        self._info_cache: dict[str, ArrayInfo] = {}

    def _zip_infos(self) -> list[tuple[str, zipfile.ZipInfo]]:
        return [(info.filename, info) for info in self._zip.infolist() if not info.is_dir()]

    # ---------------------------------------------------------------- context manager

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    # ---------------------------------------------------------------- queries

    def keys(self) -> list[str]:
        """Array names in file order."""
        return list(self._members)

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def _member(self, key: str) -> zipfile.ZipInfo:
        try:
            return self._members[key]
        except KeyError:
            have = ", ".join(self._members) or "none"
            raise MissingKeyError(
                self.path, f"has no array {key!r} (arrays present: {have})", key=key
            ) from None

    def _open(self, key: str) -> IO[bytes]:
        try:
            return self._zip.open(self._member(key))
        except _ZIP_ERRORS as exc:
            raise CorruptFileError(self.path, f"array {key!r} cannot be opened: {exc}") from None

    def info(self, key: str) -> ArrayInfo:
        """Shape and dtype of ``key`` from its ``.npy`` header alone (no array data is read).

        Raises:
            MissingKeyError: no such array.
            CorruptFileError: the header is damaged, or the member's size does not match it.
            PickledDataError: the array holds Python objects.
        """
        cached = self._info_cache.get(key)
        if cached is not None:
            return cached
        member = self._member(key)
        with self._open(key) as fp:
            shape, fortran, dtype = self._read_header(key, fp)
            header_len = fp.tell()
        info = ArrayInfo(
            shape=tuple(int(n) for n in shape),
            dtype=dtype,
            fortran_order=fortran,
            compressed=member.compress_type != zipfile.ZIP_STORED,
            offset=member.header_offset,
        )
        if info.dtype.hasobject:
            raise PickledDataError(
                self.path,
                f"array {key!r} holds Python objects (dtype {dtype}), which only pickle could read; "
                "amasskit never enables pickle for data files. Re-save it with plain numeric or string arrays.",
            )
        if header_len + info.nbytes != member.file_size:
            raise CorruptFileError(
                self.path,
                f"array {key!r}: header says {info.shape} {info.dtype} ({info.nbytes} bytes) but the member holds "
                f"{member.file_size - header_len} bytes; the file is truncated or damaged.",
            )
        self._info_cache[key] = info
        return info

    def _read_header(self, key: str, fp: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
        fmt = np.lib.format
        try:
            version = fmt.read_magic(fp)
            if version == (1, 0):
                return fmt.read_array_header_1_0(fp, max_header_size=_MAX_HEADER_SIZE)
            if version in ((2, 0), (3, 0)):
                return fmt.read_array_header_2_0(fp, max_header_size=_MAX_HEADER_SIZE)
            raise ValueError(f"unsupported .npy format version {version}")
        except (ValueError, TypeError, SyntaxError, *_ZIP_ERRORS) as exc:
            raise CorruptFileError(self.path, f"array {key!r} has no valid .npy header: {exc}") from None

    def read(self, key: str) -> np.ndarray:
        """The whole array ``key``, read without pickle.

        Raises:
            MissingKeyError, CorruptFileError, PickledDataError: as :meth:`info`, and for data that is cut short or
            fails its CRC check.
        """
        self.info(key)  # validates header, dtype and size before any data is read
        with self._open(key) as fp:
            try:
                array = np.lib.format.read_array(fp, allow_pickle=False, max_header_size=_MAX_HEADER_SIZE)
            except (ValueError, OSError, *_ZIP_ERRORS) as exc:
                raise CorruptFileError(self.path, f"array {key!r} cannot be read: {exc}") from None
        return np.asarray(array)

    def read_scalar(self, key: str) -> object:
        """A 0-d (or one-element) array as a Python scalar (str, bytes, float, int)."""
        info = self.info(key)
        if int(np.prod(info.shape, dtype=np.int64)) != 1:
            raise ArrayShapeError(self.path, f"{key!r} must be a single value, got shape {info.shape}")
        value = self.read(key).reshape(())
        return value.item()
