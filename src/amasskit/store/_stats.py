"""What a store holds: totals, lengths, frame rates, augmentations, fields and the range of every component."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ._format import Store

__all__ = ["StoreStats", "store_stats"]


@dataclass(frozen=True)
class StoreStats:
    """What :func:`plot_store` draws and ``amasskit store stats`` prints.

    Attributes:
        sequences, frames, seconds: totals. lengths, durations: ``(S,)`` frames and seconds per sequence.
        fps: rate -> sequences.
        augmentation: kind (``none``, ``mirror``, ``rotate``, ``rotate+mirror``, ...) -> sequences.
        fields: name -> ``(shape of one frame, dtype)``.
        ranges: name -> ``(C, 5)`` per component: min, 1st, 50th, 99th percentile, max (over ``sampled`` frames).
        sampled: how many frames the ranges were computed from (all, or an even sample of large stores).
    """

    sequences: int
    frames: int
    seconds: float
    lengths: np.ndarray
    durations: np.ndarray
    fps: dict[float, int]
    augmentation: dict[str, int]
    fields: dict[str, tuple[tuple[int, ...], str]]
    ranges: dict[str, np.ndarray]
    sampled: int


def store_stats(store: Store, *, max_frames: int = 200_000) -> StoreStats:
    """Statistics of an open :class:`~amasskit.store.Store` (ranges over at most ``max_frames`` evenly spaced
    frames, read from the memory maps)."""
    F = store.num_frames
    rows = (
        np.unique(np.linspace(0, F - 1, num=min(F, max_frames)).astype(np.int64))
        if F
        else np.zeros(0, np.int64)
    )
    ranges = {}
    for name, array in store.fields.items():
        values = np.asarray(array[rows], dtype=np.float64).reshape(len(rows), -1)
        ranges[name] = (np.percentile(values, [0, 1, 50, 99, 100], axis=0).T if len(rows)
                        else np.zeros((values.shape[1], 5)))  # fmt: skip
    kinds = Counter(augmentation_kind(s.get("augmentation", "none")) for s in store.sequences)
    lengths = np.asarray(store.length, dtype=np.int64)
    fps = np.asarray(store.fps, dtype=np.float64)
    durations = lengths / np.maximum(fps, 1e-9)
    return StoreStats(
        sequences=len(store), frames=F, seconds=float(durations.sum()), lengths=lengths, durations=durations,
        fps=dict(sorted(Counter(round(float(f), 4) for f in fps).items())), augmentation=dict(sorted(kinds.items())),
        fields={n: (tuple(a.shape[1:]), str(a.dtype)) for n, a in store.fields.items()}, ranges=ranges,
        sampled=len(rows),
    )  # fmt: skip


def augmentation_kind(augmentation: str) -> str:
    """``rotate:0.123+mirror`` -> ``rotate+mirror``."""
    return "+".join(part.split(":")[0] for part in augmentation.split("+"))
