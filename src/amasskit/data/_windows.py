"""Window arithmetic over a store's sequences: which frames window ``i`` covers, vectorised over any number of ``i``.

Every sequence ``s`` of length ``T_s`` holds ``n_s = (T_s - L) // stride + 1`` windows of ``L`` frames (none when
``T_s < L``); window ``k`` of ``s`` starts at frame ``k * stride``. Windows are numbered sequence after sequence, so
window ``i`` belongs to the sequence ``s`` with ``first[s] <= i < first[s] + n_s``.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["WindowIndex"]


class WindowIndex:
    """The windows of ``clip_length`` frames every ``stride`` frames over sequences at ``offsets`` with ``lengths``.

    Attributes:
        counts: ``(N,)`` windows per sequence. first: ``(N,)`` number of each sequence's first window.
        total: the number of windows.
    """

    def __init__(self, offsets: np.ndarray, lengths: np.ndarray, clip_length: int, stride: int) -> None:
        if clip_length < 1 or stride < 1:
            raise InvalidArgumentError(f"clip_length and stride must be >= 1, got {clip_length} and {stride}")
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.clip_length, self.stride = int(clip_length), int(stride)
        self.counts = np.where(self.lengths >= clip_length, (self.lengths - clip_length) // stride + 1, 0)
        self.first = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        self.total = int(self.counts.sum())

    def __len__(self) -> int:
        return self.total

    def locate(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(sequence, start)`` of windows ``index (B,)``: the sequence each belongs to and its first frame within
        that sequence.

        Raises:
            IndexError: an index outside ``[-len, len)``.
        """
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < -self.total or index.max() >= self.total):
            raise IndexError(f"window index out of range for {self.total} windows")
        index = np.where(index < 0, index + self.total, index)
        # a sequence without windows shares its ``first`` with the next; side="right" lands on the last of such a
        # run, which is the one that holds the windows
        sequence = np.searchsorted(self.first, index, side="right") - 1
        return sequence, (index - self.first[sequence]) * self.stride

    def weights(self, by: str = "frames") -> np.ndarray:
        """``(len,)`` sampling weights per window: ``frames`` (every window alike, so sequences weigh by duration)
        or ``sequence`` (every sequence's windows together weigh the same, whatever its duration)."""
        if by == "frames":
            return np.ones(self.total)
        if by == "sequence":
            return np.repeat(1.0 / np.maximum(self.counts, 1), self.counts)
        raise InvalidArgumentError(f"weights by 'frames' or 'sequence', got {by!r}")
