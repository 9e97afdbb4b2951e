"""Deformation-transfer matrices: which source vertices, with which weights, make each target vertex.

The SMPL-X authors distribute, for each pair of mesh topologies, ``<source>2<target>_deftrafo_setup.pkl``: a latin-1
pickle of a dict whose ``mtx`` (or ``matrix``) is a scipy sparse matrix of shape ``(V_target, 2 V_source)``. Its first
``V_source`` columns map source vertices to target vertices as barycentric weights (1 to 3 per row, rows summing to
1); the second half acts on normals and is not used here. amasskit reads it through its restricted unpickler (sparse
matrices rebuilt from their arrays, nothing else executed), or from a plain npz in scipy's ``save_npz`` layout
(``format``, ``shape``, ``data``, ``indices``, ``indptr``; or ``row``, ``col`` for ``coo``), and keeps it as a padded
gather: ``index (V_target, K)``, ``weight (V_target, K)``.

Where the files go: ``<model folder>/transfer/`` (also found: ``<model folder>/transfer_data/`` as the smplx repository
lays it out, and the model folder itself). SMPL and SMPL+H share one mesh, so between them no file is needed.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from .._util.paths import user_path
from ..body import MODELS_ENV, coo_from_arrays, load_restricted_pickle, sparse_to_coo
from ..conventions import ModelType
from ..errors import BodyModelNotFoundError, TransferFileError

__all__ = [
    "MASK_FILE",
    "TRANSFER_DIR",
    "TransferMatrix",
    "find_mask_file",
    "find_transfer_file",
    "load_mask",
    "load_transfer",
    "mesh_of",
    "transfer_file_name",
]

TRANSFER_DIR: Final[str] = "transfer"
MASK_FILE: Final[str] = "smplx_mask_ids.npy"
_SEARCH_DIRS: Final[tuple[str, ...]] = (TRANSFER_DIR, "transfer_data", ".")
_WHERE_TO_GET: Final[str] = (
    "the deformation-transfer files are part of SMPL-X: register at https://smpl-x.is.tue.mpg.de and download "
    "'Model transfer' (model_transfer.zip); put its *_deftrafo_setup.pkl files (and smplx_mask_ids.npy) in "
    f"<model folder>/{TRANSFER_DIR}/"
)
_MESH: Final[dict[ModelType, str]] = {
    ModelType.SMPL: "smpl",
    ModelType.SMPLH: "smpl",
    ModelType.SMPLX: "smplx",
}


@dataclass(frozen=True, eq=False)
class TransferMatrix:
    """A sparse linear map from source-mesh vertices to target-mesh vertices, as a padded gather.

    Attributes:
        index: ``(V_target, K)`` source vertex of each term (padding terms point at vertex 0 with weight 0).
        weight: ``(V_target, K)`` float64 weights; each row sums to 1.
        source_vertices: ``V_source``.
        path: where it was read from ("" when built in memory).
    """

    index: np.ndarray
    weight: np.ndarray
    source_vertices: int
    path: str = ""

    @property
    def target_vertices(self) -> int:
        return int(self.index.shape[0])

    @classmethod
    def identity(cls, num_vertices: int) -> TransferMatrix:
        """The map between two models of one mesh (SMPL and SMPL+H)."""
        return cls(np.arange(num_vertices, dtype=np.int64)[:, None], np.ones((num_vertices, 1)), num_vertices)

    @classmethod
    def from_coo(
        cls,
        rows: np.ndarray,
        cols: np.ndarray,
        values: np.ndarray,
        shape: tuple[int, int],
        *,
        source_vertices: int,
        path: str = "",
    ) -> TransferMatrix:
        """From the entries of the sparse matrix; columns at or beyond ``source_vertices`` (the normals' half) are
        dropped.

        Raises:
            TransferFileError: a row with no entry or weights that do not sum to 1 (within 1e-3), non-finite values,
                more columns than ``2 * source_vertices``.
        """
        where = path or "<transfer matrix>"
        if shape[1] not in (source_vertices, 2 * source_vertices):
            raise TransferFileError(
                where,
                f"has {shape[1]} columns; a transfer from a {source_vertices}-vertex mesh has "
                f"{source_vertices} or {2 * source_vertices} (positions, then normals)",
            )
        if shape[0] < 1:
            raise TransferFileError(where, f"has {shape[0]} rows (target vertices)")
        if shape[0] > len(
            rows
        ):  # some row is empty: named without allocating per row (a file may claim billions)
            present = np.unique(rows)
            gaps = np.flatnonzero(present != np.arange(len(present)))
            first = int(gaps[0]) if len(gaps) else len(present)
            raise TransferFileError(
                where,
                f"target vertex {first} has no source vertex ({shape[0]} target "
                f"vertices, {len(rows)} weights)",
            )
        keep = (cols < source_vertices) & (values != 0)
        rows, cols, values = rows[keep], cols[keep], np.asarray(values[keep], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise TransferFileError(where, "holds weights that are not finite")
        num_targets = shape[0]
        counts = np.bincount(rows, minlength=num_targets)
        if np.any(counts == 0):
            raise TransferFileError(where, f"target vertex {int(np.argmin(counts))} has no source vertex")
        order = np.lexsort((cols, rows))
        rows, cols, values = rows[order], cols[order], values[order]
        width = int(counts.max())
        slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        index = np.zeros((num_targets, width), dtype=np.int64)
        weight = np.zeros((num_targets, width), dtype=np.float64)
        index[rows, slot] = cols
        weight[rows, slot] = values
        sums = weight.sum(axis=1)
        if np.any(np.abs(sums - 1.0) > 1e-3):
            bad = int(np.argmax(np.abs(sums - 1.0)))
            raise TransferFileError(
                where, f"row {bad} sums to {sums[bad]:.6f}, not 1: not barycentric weights"
            )
        return cls(index, weight, source_vertices, path)

    def apply(self, vertices: Any) -> Any:
        """``(..., V_source, 3)`` source vertices (numpy or torch) -> ``(..., V_target, 3)``."""
        if isinstance(vertices, np.ndarray):
            return np.einsum("tk,...tkc->...tc", self.weight, vertices[..., self.index, :])
        import torch

        # one sparse product over the vertices (vertex-major), measured 6x faster than the padded gather on a CPU
        matrix = self._sparse(vertices.device, vertices.dtype)
        lead = vertices.shape[:-2]
        flat = vertices.reshape(-1, self.source_vertices, 3).transpose(0, 1).reshape(self.source_vertices, -1)
        out = torch.sparse.mm(matrix, flat).reshape(self.target_vertices, -1, 3).transpose(0, 1)
        return out if len(lead) == 1 else out.reshape(*lead, self.target_vertices, 3)

    def _sparse(self, device: Any, dtype: Any) -> Any:
        """The map as a torch sparse ``(V_target, V_source)`` matrix on ``device`` (built once per device and dtype)."""
        import torch

        key = (str(device), dtype)
        cache = self.__dict__.setdefault("_sparse_cache", {})
        if key not in cache:
            rows = np.broadcast_to(np.arange(self.target_vertices)[:, None], self.index.shape)
            cache[key] = (
                torch.sparse_coo_tensor(
                    torch.as_tensor(np.stack([rows.reshape(-1), self.index.reshape(-1)])),
                    torch.as_tensor(self.weight.reshape(-1), dtype=dtype),
                    (self.target_vertices, self.source_vertices),
                    check_invariants=True,
                )
                .coalesce()
                .to(device)
            )
        return cache[key]


def transfer_file_name(source: ModelType | str, target: ModelType | str) -> str:
    """``smplh2smplx_deftrafo_setup.pkl`` and the like (the names the SMPL-X release uses)."""
    return f"{ModelType.parse(source).value}2{ModelType.parse(target).value}_deftrafo_setup.pkl"


def _folders(model_dir: str | os.PathLike[str] | None) -> list[Path]:
    root = model_dir if model_dir is not None else os.environ.get(MODELS_ENV)
    if root is None:
        return []
    base = user_path(root)
    return [base / d if d != "." else base for d in _SEARCH_DIRS]


def find_transfer_file(
    source: ModelType | str, target: ModelType | str, *, model_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The transfer file from ``source`` to ``target`` in the model folder (``.pkl``, or ``.npz`` of the same stem).

    Raises:
        BodyModelNotFoundError: no such file; the message lists where amasskit looked and where the files are
            registered for.
    """
    name = transfer_file_name(source, target)
    looked = []
    for folder in _folders(model_dir):
        for candidate in (folder / name, (folder / name).with_suffix(".npz")):
            looked.append(str(candidate))
            if candidate.is_file():
                return candidate
    where = ", ".join(looked) if looked else f"nowhere: no model folder given and {MODELS_ENV} is not set"
    raise BodyModelNotFoundError(f"no transfer file {name}; looked at {where}. {_WHERE_TO_GET}")


def find_mask_file(model_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """``smplx_mask_ids.npy`` in the model folder's transfer places, or None (it is optional)."""
    for folder in _folders(model_dir):
        if (folder / MASK_FILE).is_file():
            return folder / MASK_FILE
    return None


def load_transfer(path: str | os.PathLike[str], *, source_vertices: int | None = None) -> TransferMatrix:
    """Read a transfer file (the released pickle, or a scipy ``save_npz`` file).

    Args:
        source_vertices: the source mesh's vertex count; by default half the columns (the released layout, positions
            then normals).

    Raises:
        TransferFileError: unreadable, a pickle holding anything but arrays and sparse matrices, no matrix in it, or
            weights that are not barycentric.
    """
    where = user_path(path)
    try:
        raw = where.read_bytes()
    except FileNotFoundError:
        raise BodyModelNotFoundError(f"{where}: no such transfer file. {_WHERE_TO_GET}") from None
    except OSError as exc:
        raise TransferFileError(where, f"cannot be read ({exc.strerror or exc})") from None
    try:
        if raw[:2] == b"PK":
            rows, cols, values, shape = _npz_coo(where)
        else:
            content = load_restricted_pickle(raw)
            if not isinstance(content, dict):
                raise ValueError(f"holds a {type(content).__name__}, not the dict of the released files")
            matrix = content.get("mtx", content.get("matrix"))
            if matrix is None:
                raise ValueError(f"has no 'mtx' (keys: {sorted(map(str, content))})")
            if isinstance(matrix, np.ndarray):
                if matrix.ndim != 2:
                    raise ValueError(f"'mtx' has shape {matrix.shape}, not 2-D")
                rows, cols = np.nonzero(matrix)
                values, shape = matrix[rows, cols], (matrix.shape[0], matrix.shape[1])
            else:
                rows, cols, values, shape = sparse_to_coo(matrix)
    except (pickle.UnpicklingError, zipfile.BadZipFile, ValueError, KeyError, EOFError, TypeError) as exc:
        raise TransferFileError(where, f"is not a usable transfer file: {exc}") from None
    count = source_vertices if source_vertices is not None else shape[1] // 2
    return TransferMatrix.from_coo(rows, cols, values, shape, source_vertices=count, path=str(where))


def _npz_coo(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """The entries of a matrix written by ``scipy.sparse.save_npz``."""
    with open(path, "rb") as fp, np.load(fp, allow_pickle=False) as npz:  # fp: closed even when np.load fails
        fmt = npz["format"].item()
        fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
        return coo_from_arrays(
            fmt, npz["shape"], {k: npz[k] for k in npz.files if k not in ("format", "shape")}
        )


def load_mask(path: str | os.PathLike[str], *, num_vertices: int) -> np.ndarray:
    """Sorted unique vertex ids to fit from a mask file (``smplx_mask_ids.npy``).

    Raises:
        TransferFileError: not an integer array of ids within ``[0, num_vertices)``.
    """
    where = user_path(path)
    try:
        ids = np.load(where, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TransferFileError(where, f"is not a readable .npy array ({exc})") from None
    if ids.ndim != 1 or ids.dtype.kind not in "iu" or len(ids) == 0:
        raise TransferFileError(where, f"must hold a 1-D array of vertex ids, got {ids.dtype} {ids.shape}")
    if ids.min() < 0 or ids.max() >= num_vertices:
        raise TransferFileError(where, f"has vertex ids outside 0..{num_vertices - 1}")
    return np.unique(ids.astype(np.int64))


def mesh_of(model: ModelType | str) -> str:
    """The mesh topology a model uses: ``smpl`` (SMPL and SMPL+H, 6,890 vertices) or ``smplx``."""
    return _MESH[ModelType.parse(model)]
