"""Safe, lazy access to the arrays of an ``.npz`` file.

``np.load`` on an npz reads a member only when it is indexed, but offers no way to learn an array's shape without
reading it, and reports problems with messages that do not name the file. :class:`NpzArchive` reads the zip central
directory once, parses an array's ``.npy`` header alone when only its shape is wanted (a few hundred bytes, so a header
scan over 14,000 files never touches pose data), never enables pickle, and turns every failure into a typed
:mod:`amasskit.errors` exception naming the file.
"""

from __future__ import annotations

import ast
import hashlib
import math
import os
import re
import struct
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

_PREFIX_BYTES = 4096
"""Bytes read at once from a stored member: its local zip header, its ``.npy`` header and, for the small scalars
(gender, frame rate), its data too. One read per member is what keeps a header scan near the cost of opening files."""
_LOCAL_HEADER = struct.Struct(
    "<4s22xHH"
)  # signature, (version .. uncompressed size), name length, extra length
_NPY_MAGIC = b"\x93NUMPY"
_HEADER_RE = re.compile(
    r"""\{'descr':\s*'(?P<descr>[<>|=]?[a-zA-Z]\d*)',\s*'fortran_order':\s*(?P<fortran>True|False),\s*"""
    r"""'shape':\s*\((?P<shape>[\d\s,]*)\),?\s*\}\s*$"""
)
"""The header numpy writes for plain numeric and string arrays. Anything else goes through numpy's own parser."""


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
        return math.prod(self.shape) * self.dtype.itemsize


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
        try:
            self._fp = open(self.path, "rb")  # noqa: SIM115  (closed by close())
        except FileNotFoundError:
            raise MotionFileNotFoundError(self.path, "no such file") from None
        except IsADirectoryError:
            raise MotionFileNotFoundError(self.path, "is a directory, not an npz file") from None
        except OSError as exc:
            raise CorruptFileError(self.path, f"cannot be read: {exc}") from None
        try:
            self._zip = zipfile.ZipFile(self._fp)
        except _ZIP_ERRORS as exc:
            self._fp.close()
            raise CorruptFileError(
                self.path, f"not a readable npz (zip) file, or truncated: {exc}. Download or unpack it again."
            ) from None
        except OSError as exc:
            self._fp.close()
            raise CorruptFileError(self.path, f"cannot be read: {exc}") from None
        self._members = {
            (info.filename[: -len(".npy")] if info.filename.endswith(".npy") else info.filename): info
            for info in self._zip.infolist()
            if not info.is_dir()
        }
        self._info_cache: dict[str, ArrayInfo] = {}
        self._prefix_cache: dict[str, tuple[bytes, int]] = {}

    # ---------------------------------------------------------------- context manager

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()
        self._fp.close()

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
        if member.compress_type == zipfile.ZIP_STORED:
            shape, fortran, dtype, header_len = self._stored_header(key, member)
        else:
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

    def _prefix(self, key: str, member: zipfile.ZipInfo) -> tuple[bytes, int]:
        """The first bytes of a stored member's data, read directly (one read), and where the data starts."""
        cached = self._prefix_cache.get(key)
        if cached is not None:
            return cached
        name_len = len(member.orig_filename.encode("utf-8" if member.flag_bits & 0x800 else "cp437"))
        try:
            self._fp.seek(member.header_offset)
            raw = self._fp.read(_LOCAL_HEADER.size + name_len + 64 + _PREFIX_BYTES)
        except OSError as exc:
            raise CorruptFileError(self.path, f"array {key!r} cannot be read: {exc}") from None
        if len(raw) < _LOCAL_HEADER.size:
            raise CorruptFileError(
                self.path, f"array {key!r}: the file ends inside its zip header; truncated"
            )
        signature, local_name_len, extra_len = _LOCAL_HEADER.unpack_from(raw)
        if signature != b"PK\x03\x04":
            raise CorruptFileError(self.path, f"array {key!r}: bad zip local header; the file is damaged")
        start = _LOCAL_HEADER.size + local_name_len + extra_len
        if start > len(raw) - 16:  # a long extra field: read again from the data start
            try:
                self._fp.seek(member.header_offset + start)
                raw, start = self._fp.read(_PREFIX_BYTES), 0
            except OSError as exc:
                raise CorruptFileError(self.path, f"array {key!r} cannot be read: {exc}") from None
        data = raw[start : start + min(member.file_size, _PREFIX_BYTES)]
        result = (data, member.header_offset + _LOCAL_HEADER.size + local_name_len + extra_len)
        self._prefix_cache[key] = result
        return result

    def _stored_header(
        self, key: str, member: zipfile.ZipInfo
    ) -> tuple[tuple[int, ...], bool, np.dtype, int]:
        """Parse the ``.npy`` header of an uncompressed member from its prefix (no zip stream, no ``ast`` for the
        headers numpy writes)."""
        data, _ = self._prefix(key, member)
        if len(data) < 10 or data[:6] != _NPY_MAGIC:
            raise CorruptFileError(self.path, f"array {key!r} has no valid .npy header: bad magic string")
        major = data[6]
        if major == 1:
            size, begin = int.from_bytes(data[8:10], "little"), 10
        elif major in (2, 3):
            size, begin = int.from_bytes(data[8:12], "little"), 12
        else:
            raise CorruptFileError(self.path, f"array {key!r} has no valid .npy header: version {major}")
        if size > _MAX_HEADER_SIZE:
            raise CorruptFileError(
                self.path,
                f"array {key!r} has no valid .npy header: {size} bytes, more than {_MAX_HEADER_SIZE}",
            )
        if begin + size > len(data):  # a long header: let numpy read it from the stream
            with self._open(key) as fp:
                shape, fortran, dtype = self._read_header(key, fp)
                return shape, fortran, dtype, fp.tell()
        text = data[begin : begin + size].decode("latin1")
        match = _HEADER_RE.match(text)
        if match is None:
            return (*self._parse_header_text(key, text), begin + size)
        shape = tuple(int(n) for n in match["shape"].replace(" ", "").split(",") if n)
        try:
            dtype = np.dtype(match["descr"])
        except TypeError as exc:
            raise CorruptFileError(self.path, f"array {key!r} has no valid .npy header: {exc}") from None
        return shape, match["fortran"] == "True", dtype, begin + size

    def _parse_header_text(self, key: str, text: str) -> tuple[tuple[int, ...], bool, np.dtype]:
        """Headers the fast pattern does not cover (structured or object dtypes): parsed as numpy does."""
        try:
            header = ast.literal_eval(text)
            if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= header.keys():
                raise ValueError(f"not an array header: {text[:80]!r}")
            dtype = np.lib.format.descr_to_dtype(header["descr"])
            shape = tuple(int(n) for n in header["shape"])
            return shape, bool(header["fortran_order"]), dtype
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
            raise CorruptFileError(self.path, f"array {key!r} has no valid .npy header: {exc}") from None

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

    def fingerprint(self) -> str:
        """A content hash from the zip directory alone: sha1 over every member's name, CRC-32 and size.

        The CRC-32 of each member is stored in the directory and covers the member's uncompressed bytes, so this
        changes whenever any array's content changes, at the cost of reading nothing beyond the directory. (Not a
        defence against deliberate collisions; use a full-file hash for that.)
        """
        digest = hashlib.sha1()
        for info in sorted(self._zip.infolist(), key=lambda i: i.filename):
            digest.update(f"{info.filename}\0{info.CRC:08x}\0{info.file_size}\n".encode())
        return digest.hexdigest()

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
        if math.prod(info.shape) != 1:
            raise ArrayShapeError(self.path, f"{key!r} must be a single value, got shape {info.shape}")
        member = self._members[key]
        if not info.compressed:
            data, _ = self._prefix(key, member)
            header_len = member.file_size - info.nbytes
            if header_len + info.nbytes <= len(data):  # the value came with the header read
                raw = data[header_len : header_len + info.nbytes]
                if zlib.crc32(data[: member.file_size]) != member.CRC:
                    raise CorruptFileError(
                        self.path, f"array {key!r} fails its CRC check; the file is damaged"
                    )
                return np.frombuffer(raw, dtype=info.dtype, count=1).reshape(()).item()
        value = self.read(key).reshape(())
        return value.item()
