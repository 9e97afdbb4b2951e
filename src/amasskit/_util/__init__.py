"""Small helpers shared across amasskit (atomic writes, ...). Private: not part of the public API."""
