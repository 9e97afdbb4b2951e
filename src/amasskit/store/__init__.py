"""The packed store: one contiguous memory-mappable array per field, a sequence index and a manifest.

* :class:`StoreWriter` - build a store (atomically: beside the target, renamed into place).
* :class:`Store` - open one; fields are memory-mapped.
* :func:`prepare` / :class:`PrepareConfig` - the pipeline from the catalog to one store per split.
* :func:`export_store` - HDF5 (with ``pose_matrot``), PyTorch ``.pt`` per field, npz per sequence.
"""

from ..errors import StoreError
from ._export import EXPORT_FORMATS, export_store, rotation_matrices
from ._format import FORMAT, FORMAT_VERSION, Store, StoreWriter, read_manifest, target_state
from ._prepare import (
    PrepareConfig,
    PreparePlan,
    PrepareReport,
    SplitPlan,
    load_config_file,
    pelvis_offset,
    plan_prepare,
    prepare,
    process_sequence,
)

__all__ = [
    "EXPORT_FORMATS",
    "FORMAT",
    "FORMAT_VERSION",
    "PrepareConfig",
    "PreparePlan",
    "PrepareReport",
    "SplitPlan",
    "Store",
    "StoreError",
    "StoreWriter",
    "export_store",
    "load_config_file",
    "pelvis_offset",
    "plan_prepare",
    "prepare",
    "process_sequence",
    "read_manifest",
    "rotation_matrices",
    "target_state",
]
