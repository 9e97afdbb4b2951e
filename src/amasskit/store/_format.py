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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import numpy as np

from .._util.atomic import atomic_open
from ..errors import StoreError
from ..sequence import Gender

__all__ = ["FORMAT", "FORMAT_VERSION", "Store", "StoreWriter"]

FORMAT: Final[str] = "amasskit.store"
FORMAT_VERSION: Final[int] = 1
_HEADER_BYTES = 128
_GENDERS = (Gender.MALE, Gender.FEMALE, Gender.NEUTRAL)


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
    overwrite: bool = False
    _fields: dict[str, _FieldFile] = field(default_factory=dict)
    _offset: list[int] = field(default_factory=list)
    _length: list[int] = field(default_factory=list)
    _fps: list[float] = field(default_factory=list)
    _betas: list[np.ndarray] = field(default_factory=list)
    _gender: list[int] = field(default_factory=list)
    _meta: list[dict[str, Any]] = field(default_factory=list)
    _frames: int = 0

    def __post_init__(self) -> None:
        self.target = Path(self.target)
        if self.target.exists() and not self.overwrite:
            raise FileExistsError(f"{self.target} already exists; pass overwrite=True to replace it")
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
            raise ValueError(f"every field needs the same number of frames, got {lengths}")
        T = next(iter(lengths.values()))
        if self._fields and set(fields) != set(self._fields):
            raise ValueError(f"fields {sorted(fields)} differ from the store's {sorted(self._fields)}")
        for name, value in fields.items():
            array = np.ascontiguousarray(value)
            f = self._fields.get(name)
            if f is None:
                path = self.staging / "fields" / f"{name}.npy"
                fp = path.open("wb")
                fp.write(b"\0" * _HEADER_BYTES)
                f = self._fields[name] = _FieldFile(path, array.dtype, tuple(array.shape[1:]), fp)
            if array.dtype != f.dtype or tuple(array.shape[1:]) != f.tail:
                raise ValueError(
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
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            self.target.rename(old)
            self.staging.rename(self.target)
            shutil.rmtree(old)
        else:
            self.staging.rename(self.target)
        return self.target


class Store:
    """A store opened for reading; fields are memory-mapped (nothing is read until used).

    Attributes:
        path: the folder. manifest: its manifest. fields: name -> ``(F, ...)`` read-only memory map.
        offset, length, fps, betas, gender: the index arrays. sequences: per-sequence metadata.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.manifest = json.loads((self.path / "manifest.json").read_text())
        except FileNotFoundError:
            raise StoreError(self.path, "no manifest.json: not a store, or one still being written") from None
        except ValueError as exc:
            raise StoreError(self.path, f"manifest.json is not valid JSON: {exc}") from None
        if self.manifest.get("format") != FORMAT:
            raise StoreError(self.path, f"not an {FORMAT} (format {self.manifest.get('format')!r})")
        if int(self.manifest.get("version", 0)) > FORMAT_VERSION:
            raise StoreError(
                self.path, f"store format {self.manifest['version']} is newer than this amasskit's"
            )
        try:
            self.fields = {
                name: np.load(self.path / "fields" / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                for name in self.manifest["fields"]
            }
            index = self.path / "index"
            self.offset = np.load(index / "offset.npy")
            self.length = np.load(index / "length.npy")
            self.fps = np.load(index / "fps.npy")
            self.betas = np.load(index / "betas.npy")
            self.gender = np.load(index / "gender.npy")
            self.sequences: list[dict[str, Any]] = json.loads((index / "sequences.json").read_text())
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
