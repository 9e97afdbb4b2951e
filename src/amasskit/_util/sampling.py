"""Picking rows evenly: the one rule every "at most ``take`` of ``count``, spread over them" in amasskit follows."""

from __future__ import annotations

import numpy as np

__all__ = ["even_indices"]


def even_indices(count: int, take: int) -> np.ndarray:
    """``(min(count, take),)`` int64 ascending: ``take`` indices spread evenly over ``0 .. count - 1`` (both ends
    included), each rounded to the nearest; all of them where ``take >= count``."""
    return np.unique(np.linspace(0, count - 1, min(count, take)).round().astype(np.int64))
