"""Pickles in the layout of the released SMPL-family files, written without chumpy or scipy installed.

The releases pickle ``chumpy.ch.Ch`` objects and scipy sparse matrices. Stand-in classes that carry those module and
class names, registered in ``sys.modules`` only while pickling, produce byte streams that read like the released
files (and that amasskit's restricted unpickler reads).
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["Ch", "CscMatrix", "dumps_released"]


class Ch:
    """Stands in for ``chumpy.ch.Ch``: pickles as ``{"x": array, "_cache": {}}``."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def __getstate__(self) -> dict[str, object]:
        return {"x": self.x, "_cache": {}}


class CscMatrix:
    """Stands in for ``scipy.sparse.csc_matrix``: pickles its ``data``, ``indices``, ``indptr`` and ``_shape``."""

    def __init__(
        self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]
    ) -> None:
        self.data, self.indices, self.indptr, self._shape = data, indices, indptr, shape

    @classmethod
    def from_coo(
        cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]
    ) -> CscMatrix:
        order = np.lexsort((rows, cols))
        counts = np.bincount(cols, minlength=shape[1])
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        return cls(np.asarray(values, np.float64)[order], rows[order].astype(np.int32), indptr, shape)

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> CscMatrix:
        rows, cols = np.nonzero(dense)
        return cls.from_coo(rows, cols, dense[rows, cols], (dense.shape[0], dense.shape[1]))

    def __getstate__(self) -> dict[str, object]:
        return {"data": self.data, "indices": self.indices, "indptr": self.indptr, "_shape": self._shape,
                "maxprint": 50}  # fmt: skip


_NAMES = {Ch: ("chumpy.ch", "Ch"), CscMatrix: ("scipy.sparse._csc", "csc_matrix")}


@contextlib.contextmanager
def _stand_ins() -> Iterator[None]:
    packages = ("chumpy", "scipy", "scipy.sparse")
    names = (*packages, *(module for module, _ in _NAMES.values()))
    saved = {name: sys.modules.get(name) for name in names}
    originals = {cls: (cls.__module__, cls.__qualname__) for cls in _NAMES}
    try:
        for name in packages:  # parents too: pickle imports each class's module to check it
            sys.modules[name] = types.ModuleType(name)
        for cls, (module, qualname) in _NAMES.items():
            holder = sys.modules.get(module)
            if holder is None or holder is saved.get(module):
                holder = sys.modules[module] = types.ModuleType(module)
            setattr(holder, qualname, cls)
            cls.__module__, cls.__qualname__ = module, qualname
        yield
    finally:
        for cls, (module_name, qualname) in originals.items():
            cls.__module__, cls.__qualname__ = module_name, qualname
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def dumps_released(payload: Any) -> bytes:
    """``payload`` (dicts, arrays, :class:`Ch`, :class:`CscMatrix`) pickled with protocol 2, as the releases are."""
    with _stand_ins():
        return pickle.dumps(payload, protocol=2)
