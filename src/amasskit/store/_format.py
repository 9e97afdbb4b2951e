"""The packed store: one folder per split, built for random access at memory speed.

Layout (format ``amasskit.store``, version 1)::

    <store>/
      manifest.json              format, version, experiment id, config, counts, fields, versions, problems
      fields/<name>.npy          one contiguous array per field over all frames, (F, ...), memory-mappable
      index/offset.npy           (N,) int64: first frame of each sequence in the field arrays
      index/length.npy           (N,) int64: its frame count
      index/fps.npy              (N,) float64
      index/betas.npy            (N, S) float32
      index/gender.npy           (N,) int8: 0 male, 1 female, 2 neutral
      index/sequences.json       per sequence: source, dataset, subject, name, augmentation

Sequence ``i`` occupies frames ``offset[i] : offset[i] + length[i]`` of every field. Fields are written by appending
to ``.npy`` files whose header has a fixed size (128 bytes) and is rewritten with the final shape when the store is
closed, so nothing is copied at the end. A store is built in ``.<name>.partial`` beside its target and renamed into
place when complete (see :class:`StoreWriter`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

import numpy as np

from .._util.atomic import atomic_open, replace_dir
from .._util.paths import user_path
from ..errors import InvalidArgumentError, OutputExistsError, StoreError
from ..sequence import Gender

__all__ = ["FORMAT", "FORMAT_VERSION", "Store", "StoreWriter", "read_manifest", "target_state"]

FORMAT: Final[str] = "amasskit.store"
FORMAT_VERSION: Final[int] = 1
_HEADER_BYTES = 128
_GENDERS = (Gender.MALE, Gender.FEMALE, Gender.NEUTRAL)
#: opens of a store tried while it keeps being replaced under the reader (each retry means another whole store was
#: swapped in meanwhile; 5 were used up on a loaded machine by a writer swapping a small store 120 times in a row)
_OPEN_ATTEMPTS = 100


def _replaced(path: Path, folder: int) -> bool:
    """Whether ``path`` now names another folder than the descriptor ``folder`` (a store swapped in meanwhile)."""
    try:
        now, then = os.stat(path), os.fstat(folder)
    except OSError:
        return True
    return (now.st_dev, now.st_ino) != (then.st_dev, then.st_ino)


def _open_in(folder: int, name: str) -> IO[bytes]:
    return os.fdopen(os.open(name, os.O_RDONLY, dir_fd=folder), "rb")


def _load_npy(folder: int, name: str) -> np.ndarray:
    with _open_in(folder, name) as fp:
        return np.load(fp, allow_pickle=False)


def _memmap_npy(folder: int, name: str) -> np.ndarray:
    """A read-only memory map of the ``.npy`` file ``name`` in the folder opened as ``folder``."""
    with _open_in(folder, name) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise ValueError(f"{name}: unsupported .npy version {version}")
        if dtype.hasobject or fortran:
            raise ValueError(f"{name}: object or Fortran-ordered arrays are not store fields")
        offset = fp.tell()
        if int(np.prod(shape)) == 0:  # nothing to map
            return np.empty(shape, dtype=dtype)
        # np.memmap maps the file by its descriptor (and keeps its own duplicate): the file is closed here
        return np.memmap(fp, dtype=dtype, mode="r", offset=offset, shape=tuple(shape))


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A version-1 ``.npy`` header padded to exactly :data:`_HEADER_BYTES` bytes."""
    text = (
        f"{{'descr': {np.lib.format.dtype_to_descr(dtype)!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    )
    body = text.encode("latin1")
    pad = _HEADER_BYTES - 10 - len(body) - 1
    if pad < 0:
        raise ValueError(f"shape {shape} does not fit a {_HEADER_BYTES}-byte header")
    header = body + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


@dataclass
class _FieldFile:
    path: Path
    dtype: np.dtype
    tail: tuple[int, ...]
    fp: IO[bytes]
    frames: int = 0


@dataclass
class StoreWriter:
    """Writes a store: add sequences in order, then :meth:`close` (or use ``with``).

    Args:
        target: the store folder to create.
        overwrite: replace an existing store at ``target``.

    Every sequence must give the same fields with the same trailing shapes and dtypes.
    """

    target: Path
    _: KW_ONLY
    overwrite: bool = False
    _fields: dict[str, _FieldFile] = field(default_factory=dict, init=False)
    _offset: list[int] = field(default_factory=list, init=False)
    _length: list[int] = field(default_factory=list, init=False)
    _fps: list[float] = field(default_factory=list, init=False)
    _betas: list[np.ndarray] = field(default_factory=list, init=False)
    _gender: list[int] = field(default_factory=list, init=False)
    _meta: list[dict[str, Any]] = field(default_factory=list, init=False)
    _frames: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.target = Path(self.target)
        existing = target_state(self.target)
        if existing == "foreign":
            raise OutputExistsError(
                f"{self.target} exists and is not an amasskit store: amasskit never replaces what it did not "
                "write; move it away or choose another output"
            )
        if existing == "store" and not self.overwrite:
            raise OutputExistsError(
                f"{self.target} already holds a store; pass overwrite=True (--overwrite) to replace it"
            )
        self.staging = self.target.with_name(f".{self.target.name}.partial")
        if self.staging.exists():
            shutil.rmtree(self.staging)
        (self.staging / "fields").mkdir(parents=True)
        (self.staging / "index").mkdir()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def add(
        self,
        fields: Mapping[str, np.ndarray],
        *,
        fps: float,
        betas: np.ndarray,
        gender: Gender | str,
        meta: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one sequence; returns its index.

        Args:
            fields: field name -> ``(T, ...)`` array (the same ``T`` for every field).
            fps, betas, gender: the sequence's frame rate, shape and gender.
            meta: JSON-friendly provenance (source, dataset, subject, name, augmentation, ...).
        """
        lengths = {name: int(np.shape(value)[0]) for name, value in fields.items()}
        if not lengths or len(set(lengths.values())) != 1:
            raise InvalidArgumentError(f"every field needs the same number of frames, got {lengths}")
        T = next(iter(lengths.values()))
        if self._fields and set(fields) != set(self._fields):
            raise InvalidArgumentError(
                f"fields {sorted(fields)} differ from the store's {sorted(self._fields)}"
            )
        for name, value in fields.items():
            array = np.ascontiguousarray(value)
            f = self._fields.get(name)
            if f is None:
                path = self.staging / "fields" / f"{name}.npy"
                fp = path.open("wb")
                fp.write(b"\0" * _HEADER_BYTES)
                f = self._fields[name] = _FieldFile(path, array.dtype, tuple(array.shape[1:]), fp)
            if array.dtype != f.dtype or tuple(array.shape[1:]) != f.tail:
                raise InvalidArgumentError(
                    f"field {name!r}: {array.dtype} {array.shape[1:]} differs from the store's {f.dtype} {f.tail}"
                )
            f.fp.write(array.tobytes())
            f.frames += T
        self._offset.append(self._frames)
        self._length.append(T)
        self._frames += T
        self._fps.append(float(fps))
        self._betas.append(np.asarray(betas, dtype=np.float32))
        self._gender.append(_GENDERS.index(Gender.parse(gender)))
        self._meta.append(dict(meta or {}))
        return len(self._offset) - 1

    def abort(self) -> None:
        """Drop everything written (the target is untouched)."""
        for f in self._fields.values():
            f.fp.close()
        shutil.rmtree(self.staging, ignore_errors=True)

    def close(self, manifest: Mapping[str, Any] | None = None) -> Path:
        """Finish the field files, write the index and manifest, and rename the store into place.

        Args:
            manifest: extra manifest entries (config, experiment id, versions, problems, ...).
        """
        for f in self._fields.values():
            f.fp.seek(0)
            f.fp.write(_npy_header(f.dtype, (f.frames, *f.tail)))
            f.fp.flush()
            os.fsync(f.fp.fileno())
            f.fp.close()
        index = self.staging / "index"
        np.save(index / "offset.npy", np.asarray(self._offset, dtype=np.int64))
        np.save(index / "length.npy", np.asarray(self._length, dtype=np.int64))
        np.save(index / "fps.npy", np.asarray(self._fps, dtype=np.float64))
        width = max((len(b) for b in self._betas), default=0)
        betas = np.zeros((len(self._betas), width), dtype=np.float32)
        for i, b in enumerate(self._betas):
            betas[i, : len(b)] = b
        np.save(index / "betas.npy", betas)
        np.save(index / "gender.npy", np.asarray(self._gender, dtype=np.int8))
        (index / "sequences.json").write_text(json.dumps(self._meta, sort_keys=True) + "\n")
        record = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "sequences": len(self._offset),
            "frames": self._frames,
            "fields": {
                n: {"dtype": str(f.dtype), "shape": [f.frames, *f.tail]} for n, f in self._fields.items()
            },
        }
        record.update(manifest or {})
        with atomic_open(self.staging / "manifest.json") as fp:
            fp.write((json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
        if target_state(self.target) == "foreign":  # appeared while this store was written
            raise OutputExistsError(
                f"{self.target} appeared meanwhile and is not an amasskit store; not replaced"
            )
        replace_dir(self.staging, self.target)  # readers see the old store or the new one, whole
        return self.target


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of the store at ``path``, or None where there is no readable amasskit store manifest."""
    try:
        manifest = json.loads((Path(path) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT else None


def target_state(path: str | os.PathLike[str]) -> Literal["absent", "empty", "store", "foreign"]:
    """What is at an output path: nothing, an empty folder, an amasskit store, or something else (a file, a link,
    a folder amasskit did not write), which amasskit never replaces."""
    target = Path(path)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        return "foreign"
    if not target.exists():
        return "absent"
    if read_manifest(target) is not None:
        return "store"
    return "empty" if not any(target.iterdir()) else "foreign"


class Store:
    """A store opened for reading; fields are memory-mapped (nothing is read until used).

    Attributes:
        path: the folder. manifest: its manifest. fields: name -> ``(F, ...)`` read-only memory map.
        offset, length, fps, betas, gender: the index arrays. sequences: per-sequence metadata.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = user_path(path)
        # Every file is opened through one descriptor of the store folder, so a store replaced while it is being
        # opened (prepare swaps a finished store in atomically, see ``replace_dir``) is read whole: the old or the
        # new. If the old one is deleted before all its files were opened, it is opened again: the new one.
        for attempt in range(_OPEN_ATTEMPTS):
            try:
                folder = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            except FileNotFoundError:
                raise StoreError(self.path, "no such store folder") from None
            except NotADirectoryError:
                raise StoreError(self.path, "not a folder, so not a store") from None
            try:
                self._load(folder)
                return
            except StoreError:
                if attempt + 1 == _OPEN_ATTEMPTS or not _replaced(self.path, folder):
                    raise
            finally:
                os.close(folder)

    def _load(self, folder: int) -> None:
        def read_bytes(name: str) -> bytes:
            with _open_in(folder, name) as fp:
                return fp.read()

        try:
            manifest = json.loads(read_bytes("manifest.json"))
        except FileNotFoundError:
            raise StoreError(self.path, "no manifest.json: not a store, or one still being written") from None
        except ValueError as exc:
            raise StoreError(self.path, f"manifest.json is not valid JSON: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise StoreError(self.path, f"not an {FORMAT} (format {found!r})")
        if int(manifest.get("version", 0)) > FORMAT_VERSION:
            raise StoreError(self.path, f"store format {manifest['version']} is newer than this amasskit's")
        self.manifest: dict[str, Any] = manifest
        try:
            self.fields = {name: _memmap_npy(folder, f"fields/{name}.npy") for name in manifest["fields"]}
            self.offset = _load_npy(folder, "index/offset.npy")
            self.length = _load_npy(folder, "index/length.npy")
            self.fps = _load_npy(folder, "index/fps.npy")
            self.betas = _load_npy(folder, "index/betas.npy")
            self.gender = _load_npy(folder, "index/gender.npy")
            self.sequences: list[dict[str, Any]] = json.loads(read_bytes("index/sequences.json"))
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(self.path, f"incomplete or damaged store: {exc}") from None
        for name, array in self.fields.items():
            if array.shape[0] != self.manifest["frames"]:
                raise StoreError(self.path, f"field {name!r} has {array.shape[0]} frames, the manifest says "
                                            f"{self.manifest['frames']}")  # fmt: skip

    def __len__(self) -> int:
        return int(self.offset.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.manifest["frames"])

    def frames(self, i: int) -> slice:
        """The frames of sequence ``i`` in the field arrays."""
        start = int(self.offset[i])
        return slice(start, start + int(self.length[i]))

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        """Sequence ``i``'s fields, ``(T_i, ...)`` each (views into the memory maps)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sequence {i} out of range for a store of {len(self)}")
        sl = self.frames(i % len(self))
        return {name: array[sl] for name, array in self.fields.items()}

    def gender_of(self, i: int) -> Gender:
        return _GENDERS[int(self.gender[i])]
