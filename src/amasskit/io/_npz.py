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
from types import TracebackType
from typing import IO, NamedTuple

import numpy as np

from .._util.paths import user_path
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
"""Members up to this size (the scalars: gender, frame rate, metadata) are read whole with their local zip header,
in one read; of larger members only :data:`_HEADER_BYTES` are read first. One small read per member is what keeps a
header scan near the cost of opening files."""
_HEADER_BYTES = 256
"""First read of a large member: its ``.npy`` header (128 bytes for what numpy writes); longer headers read more."""
# signature, (version .. uncompressed size), name length, extra length
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_EOCD = struct.Struct(
    "<4s4H2LH"
)  # signature, disk, cd disk, entries here, entries, cd size, cd offset, comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_CD_ENTRY = struct.Struct("<4s4B4HL2L5H2L")
_TAIL_BYTES = 8192
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


class _Entry(NamedTuple):
    """What the zip central directory says of one member (a tuple: thousands are made per second in a scan)."""

    filename: str
    header_offset: int
    compress_type: int
    CRC: int
    compress_size: int
    file_size: int


def _pread(fp: IO[bytes], size: int, offset: int) -> bytes:
    """``size`` bytes at ``offset`` in one system call where the platform has ``pread``."""
    if hasattr(os, "pread"):
        return os.pread(fp.fileno(), size, offset)
    fp.seek(offset)
    return fp.read(size)


def _read_directory(fp: IO[bytes]) -> list[_Entry] | None:
    """Parse the zip central directory from the file's tail; None for anything unusual (``zipfile`` then decides).

    ``zipfile.ZipFile`` spends ten times longer than opening the file does, most of it building objects a header
    scan never uses; this reads the end record and the directory with one or two reads.
    """
    size = os.fstat(fp.fileno()).st_size
    tail_start = max(0, size - _TAIL_BYTES)
    tail = _pread(fp, size - tail_start, tail_start)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        return None
    _sig, disk, cd_disk, _here, count, cd_size, cd_offset, _comment = _EOCD.unpack_from(tail, at)
    if disk or cd_disk:
        return None
    if count == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        loc = at - _ZIP64_LOCATOR.size
        if loc < 0 or tail[loc : loc + 4] != b"PK\x06\x07":
            return None
        eocd64 = _ZIP64_LOCATOR.unpack_from(tail, loc)[2] - tail_start
        if eocd64 < 0 or tail[eocd64 : eocd64 + 4] != b"PK\x06\x06":
            return None
        fields = _ZIP64_EOCD.unpack_from(tail, eocd64)
        count, cd_size, cd_offset = fields[7], fields[8], fields[9]
    if cd_offset + cd_size > size:
        return None
    if cd_offset >= tail_start:
        directory = tail[cd_offset - tail_start : cd_offset - tail_start + cd_size]
    else:
        directory = _pread(fp, cd_size, cd_offset)
    entries = []
    pos = 0
    for _ in range(count):
        if pos + _CD_ENTRY.size > len(directory):
            return None
        f = _CD_ENTRY.unpack_from(directory, pos)
        if f[0] != b"PK\x01\x02":
            return None
        flags, method, crc, csize, usize = f[5], f[6], f[9], f[10], f[11]
        name_len, extra_len, comment_len, offset = f[12], f[13], f[14], f[18]
        start = pos + _CD_ENTRY.size
        name = directory[start : start + name_len].decode("utf-8" if flags & 0x800 else "cp437")
        if 0xFFFFFFFF in (csize, usize, offset):  # sizes or offset in the zip64 extra field
            values = _zip64_values(directory[start + name_len : start + name_len + extra_len])
            if values is None:
                return None
            if usize == 0xFFFFFFFF:
                usize = values.pop(0) if values else -1
            if csize == 0xFFFFFFFF:
                csize = values.pop(0) if values else -1
            if offset == 0xFFFFFFFF:
                offset = values.pop(0) if values else -1
            if min(usize, csize, offset) < 0:
                return None
        if offset + _LOCAL_HEADER.size > size:
            return None
        entries.append(_Entry(name, offset, method, crc, csize, usize))
        pos = start + name_len + extra_len + comment_len
    return entries


def _zip64_values(extra: bytes) -> list[int] | None:
    """The 64-bit values of a zip64 extra field (tag 1), in the order the format gives them."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        if tag == 0x0001:
            body = extra[pos + 4 : pos + 4 + length]
            return list(struct.unpack_from(f"<{len(body) // 8}Q", body))
        pos += 4 + length
    return None


class NpzArchive:
    """An open npz file; use as a context manager.

    Args:
        path: the ``.npz`` file.

    Raises:
        MotionFileNotFoundError: ``path`` does not exist or is not a regular file.
        CorruptFileError: not a zip file, or its directory is truncated or damaged.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = user_path(path)
        try:
            self._fp = open(self.path, "rb", buffering=0)  # noqa: SIM115  (closed by close())
        except FileNotFoundError:
            raise MotionFileNotFoundError(self.path, "no such file") from None
        except IsADirectoryError:
            raise MotionFileNotFoundError(self.path, "is a directory, not an npz file") from None
        except OSError as exc:
            raise CorruptFileError(self.path, f"cannot be read: {exc}") from None
        self._zipfile: zipfile.ZipFile | None = None
        try:
            entries = _read_directory(self._fp)
        except (OSError, struct.error, UnicodeDecodeError):
            entries = None
        if entries is None:  # unusual or damaged: let zipfile parse it, and say what it found
            entries = [
                _Entry(i.filename, i.header_offset, i.compress_type, i.CRC, i.compress_size, i.file_size)
                for i in self._zip.infolist()
            ]
        self._members = {
            (e.filename[: -len(".npy")] if e.filename.endswith(".npy") else e.filename): e
            for e in entries
            if not e.filename.endswith("/")
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

    @property
    def _zip(self) -> zipfile.ZipFile:
        """The ``zipfile`` view, made only when array data is read through it (or the fast directory failed)."""
        if self._zipfile is None:
            try:
                self._zipfile = zipfile.ZipFile(self._fp)
            except _ZIP_ERRORS as exc:
                self._fp.close()
                raise CorruptFileError(
                    self.path,
                    f"not a readable npz (zip) file, or truncated: {exc}. Download or unpack it again.",
                ) from None
            except OSError as exc:
                self._fp.close()
                raise CorruptFileError(self.path, f"cannot be read: {exc}") from None
        return self._zipfile

    def close(self) -> None:
        if self._zipfile is not None:
            self._zipfile.close()
        self._fp.close()

    # ---------------------------------------------------------------- queries

    def keys(self) -> list[str]:
        """Array names in file order."""
        return list(self._members)

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def _member(self, key: str) -> _Entry:
        try:
            return self._members[key]
        except KeyError:
            have = ", ".join(self._members) or "none"
            raise MissingKeyError(
                self.path, f"has no array {key!r} (arrays present: {have})", key=key
            ) from None

    def _open(self, key: str) -> IO[bytes]:
        try:
            return self._zip.open(self._member(key).filename)
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

    def _prefix(self, key: str, member: _Entry) -> tuple[bytes, int]:
        """The first bytes of a stored member's data, read directly (one read), and where the data starts."""
        cached = self._prefix_cache.get(key)
        if cached is not None:
            return cached
        name_len = len(member.filename.encode())
        try:
            want = member.file_size if member.file_size <= _PREFIX_BYTES else _HEADER_BYTES
            raw = _pread(self._fp, _LOCAL_HEADER.size + name_len + 32 + want, member.header_offset)
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
        if len(raw) - start < min(
            want, member.file_size
        ):  # a long extra field: read again from the data start
            try:
                raw, start = _pread(self._fp, want, member.header_offset + start), 0
            except OSError as exc:
                raise CorruptFileError(self.path, f"array {key!r} cannot be read: {exc}") from None
        data = raw[start : start + min(member.file_size, want)]
        result = (data, member.header_offset + _LOCAL_HEADER.size + local_name_len + extra_len)
        self._prefix_cache[key] = result
        return result

    def _stored_header(self, key: str, member: _Entry) -> tuple[tuple[int, ...], bool, np.dtype, int]:
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
        for info in sorted(self._members.values(), key=lambda i: i.filename):
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
