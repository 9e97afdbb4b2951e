"""The packed store: one contiguous memory-mappable array per field, a sequence index and a manifest.

* :class:`StoreWriter` - build a store (atomically: beside the target, renamed into place).
* :class:`Store` - open one; fields are memory-mapped.
* :func:`export_store` - HDF5 (with ``pose_matrot``), PyTorch ``.pt`` per field, npz per sequence.
* :func:`store_stats` - what a store holds, per sub-dataset.

The pipeline that makes stores from the catalog is :mod:`amasskit.prepare`; its names are still importable from
here (``from amasskit.store import prepare`` keeps working).
"""

from typing import Any

from ..errors import StoreError
from ._export import EXPORT_FORMATS, export_store, rotation_matrices
from ._format import FORMAT, FORMAT_VERSION, Store, StoreWriter, read_manifest, target_state
from ._stats import StoreStats, store_stats

__all__ = [
    "EXPORT_FORMATS",
    "FORMAT",
    "FORMAT_VERSION",
    "Store",
    "StoreError",
    "StoreStats",
    "StoreWriter",
    "export_store",
    "read_manifest",
    "rotation_matrices",
    "store_stats",
    "target_state",
]

# moved to amasskit.prepare (0.2); resolved on first use so that importing the store format never imports the pipeline
_MOVED_TO_PREPARE = frozenset({
    "PrepareConfig", "PreparePlan", "PrepareReport", "SplitPlan", "load_config_file", "pelvis_offset",
    "plan_prepare", "prepare", "process_sequence",
})  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_PREPARE:
        from .. import prepare as _prepare_package

        return getattr(_prepare_package, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
