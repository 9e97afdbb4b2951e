"""The packed store: one contiguous memory-mappable array per field, a sequence index and a manifest.

* :class:`StoreWriter` - build a store (atomically: beside the target, renamed into place).
* :class:`Store` - open one; fields are memory-mapped.
* :func:`prepare` / :class:`PrepareConfig` - the pipeline from the catalog to one store per split.
"""

from ..errors import StoreError
from ._format import FORMAT, FORMAT_VERSION, Store, StoreWriter
from ._prepare import PrepareConfig, PrepareReport, prepare, process_sequence

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "PrepareConfig",
    "PrepareReport",
    "Store",
    "StoreError",
    "StoreWriter",
    "prepare",
    "process_sequence",
]
