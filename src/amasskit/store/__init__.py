"""The packed store: one contiguous memory-mappable array per field, a sequence index and a manifest.

* :class:`StoreWriter` - build a store (atomically: beside the target, renamed into place).
* :class:`Store` - open one; fields are memory-mapped.
* :func:`prepare` / :class:`PrepareConfig` - the pipeline from the catalog to one store per split.
* :func:`export_store` - HDF5 (with ``pose_matrot``), PyTorch ``.pt`` per field, npz per sequence.
"""

from ..errors import StoreError
from ._export import EXPORT_FORMATS, export_store, rotation_matrices
from ._format import FORMAT, FORMAT_VERSION, Store, StoreWriter
from ._prepare import PrepareConfig, PrepareReport, pelvis_offset, prepare, process_sequence

__all__ = [
    "EXPORT_FORMATS",
    "FORMAT",
    "FORMAT_VERSION",
    "PrepareConfig",
    "PrepareReport",
    "Store",
    "StoreError",
    "StoreWriter",
    "export_store",
    "pelvis_offset",
    "prepare",
    "process_sequence",
    "rotation_matrices",
]
