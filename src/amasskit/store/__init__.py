"""The packed store: one contiguous memory-mappable array per field, a sequence index and a manifest.

* :class:`StoreWriter` - build a store (atomically: beside the target, renamed into place).
* :class:`Store` - open one; fields are memory-mapped.
"""

from ..errors import StoreError
from ._format import FORMAT, FORMAT_VERSION, Store, StoreWriter

__all__ = ["FORMAT", "FORMAT_VERSION", "Store", "StoreError", "StoreWriter"]
