"""Reading the SMPL ``.pkl`` model files without chumpy, and without running arbitrary pickle code.

The released SMPL pickles (Python 2, ``latin1``) hold numpy arrays, ``chumpy.Ch`` objects (arrays wrapped for
autodiff) and a ``scipy.sparse.csc_matrix`` (the joint regressor). :class:`RestrictedUnpickler` lets numpy's own
array reconstruction through, maps the chumpy classes to a stub that keeps the wrapped array and scipy's sparse
matrices to a stub that rebuilds the dense array from ``data``/``indices``/``indptr``, and refuses every other global,
so a hostile pickle cannot import or call anything.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

__all__ = ["RestrictedUnpickler", "coo_from_arrays", "load_restricted_pickle", "sparse_to_coo", "to_array"]

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_SAFE_BUILTINS = {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("__builtin__", "object"),
                  ("builtins", "object")}  # fmt: skip


class _ChumpyStub:
    """Stands in for any chumpy class: keeps the state dict; :func:`to_array` takes its ``x`` array."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _SparseStub:
    """Stands in for scipy's sparse matrices (csc/csr): rebuilds the dense array from the pickled state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = dict(state)
        self.kind = "csr" if "csr" in type(self).__name__.lower() else "csc"


class _CsrStub(_SparseStub):
    pass


class _CscStub(_SparseStub):
    pass


class _CooStub(_SparseStub):
    def __setstate__(self, state: Any) -> None:
        self.state = dict(state)
        self.kind = "coo"


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that knows numpy arrays, chumpy objects and scipy sparse matrices, and refuses everything else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            if name in ("ndarray", "dtype"):
                return getattr(np, name)
            try:
                from numpy._core import multiarray  # numpy >= 2 (numpy.core is a deprecated alias there)
            except ImportError:  # pragma: no cover - numpy 1.x
                from numpy.core import multiarray  # type: ignore[no-redef]
            return getattr(multiarray, name)
        if (module, name) == (
            "_codecs",
            "encode",
        ):  # protocol-2 pickles written by Python 3 encode bytes this way
            import _codecs

            return _codecs.encode
        if (module, name) in _SAFE_BUILTINS:
            import copyreg

            return getattr(copyreg, "_reconstructor") if name == "_reconstructor" else object  # noqa: B009
        if module.startswith("chumpy"):
            return _ChumpyStub
        if module.startswith("scipy.sparse"):
            if "csr" in name:
                return _CsrStub
            if "csc" in name:
                return _CscStub
            if "coo" in name:
                return _CooStub
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: not numpy, chumpy or scipy.sparse data"
        )


def load_restricted_pickle(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (``latin1`` for Python 2 pickles)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def sparse_to_coo(value: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """``(rows, cols, values, shape)`` of a pickled scipy sparse matrix (csr, csc or coo), without forming the dense
    matrix (a deformation-transfer matrix would take a gigabyte dense).

    Raises:
        ValueError: not a sparse matrix, or arrays that do not fit its shape.
    """
    if not isinstance(value, _SparseStub):
        raise ValueError(f"expected a scipy sparse matrix, got {type(value).__name__}")
    st = value.state
    return coo_from_arrays(value.kind, st.get("_shape", st.get("shape", ())), st)


def coo_from_arrays(
    kind: str, shape: Any, arrays: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """``(rows, cols, values, shape)`` from a sparse matrix's arrays as scipy keeps them: ``data`` with ``indices``
    and ``indptr`` (``csr``, ``csc``) or with ``row`` and ``col`` (``coo``); ``arrays`` maps those names to arrays
    (a pickled matrix's state, or an npz written by ``scipy.sparse.save_npz``).

    Raises:
        ValueError: an unknown kind, or arrays that do not fit the shape or each other.
    """
    size = tuple(int(n) for n in shape)
    if len(size) != 2:
        raise ValueError("a sparse matrix without a 2-D shape")
    data = np.asarray(arrays["data"])
    if kind == "coo":
        rows, cols = np.asarray(arrays["row"], np.int64), np.asarray(arrays["col"], np.int64)
    elif kind in ("csr", "csc"):
        indices, indptr = np.asarray(arrays["indices"], np.int64), np.asarray(arrays["indptr"], np.int64)
        major = size[1] if kind == "csc" else size[0]
        if len(indptr) != major + 1 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
            raise ValueError("a sparse matrix whose indptr does not fit its shape")
        owner = np.repeat(np.arange(major, dtype=np.int64), np.diff(indptr))
        rows, cols = (indices, owner) if kind == "csc" else (owner, indices)
    else:
        raise ValueError(f"sparse format {kind!r} (expected csr, csc or coo)")
    if not (len(rows) == len(cols) == len(data)):
        raise ValueError("a sparse matrix whose index and value arrays differ in length")
    if len(rows) and (rows.min() < 0 or rows.max() >= size[0] or cols.min() < 0 or cols.max() >= size[1]):
        raise ValueError(f"a sparse matrix with entries outside its shape {size}")
    return rows, cols, data, (size[0], size[1])


def to_array(value: Any) -> np.ndarray:
    """A numpy array from what the pickle held: an array, a chumpy stub, a sparse stub, or a list.

    Raises:
        ValueError: anything else.
    """
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, _ChumpyStub):
        state = value.state
        if isinstance(state, dict) and "x" in state:
            return to_array(state["x"])
        raise ValueError("a chumpy object without its array ('x')")
    if isinstance(value, _SparseStub):
        rows, cols, data, shape = sparse_to_coo(value)
        dense = np.zeros(shape, dtype=data.dtype)
        dense[rows, cols] = data
        return dense
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    raise ValueError(f"cannot make an array of {type(value).__name__}")
