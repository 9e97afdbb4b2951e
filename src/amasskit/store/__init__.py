"""The packed store: one contiguous memory-mappable array per field, a sequence index and a manifest.
(Planned: issue "Prepare".)"""
