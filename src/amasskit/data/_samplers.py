"""Samplers that hand out every window exactly once per epoch, across DataLoader workers and distributed ranks.

Indices are drawn in the main process (as every map-style DataLoader does), so workers never decide what to load and
cannot drop or repeat items; the order is a function of ``(seed, epoch)`` only. Ranks take interleaved slices of the
epoch's permutation: every item goes to exactly one rank, and rank sizes differ by at most one (``even=True`` drops
the last ``len % world`` items of each epoch's permutation instead, a seeded subset, so every rank has the same
number of batches as DDP needs).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["IndexBatch", "ShardedBatchSampler", "ShardedSampler", "epoch_order"]


class IndexBatch(NamedTuple):
    """What :class:`ShardedBatchSampler` yields: the window indices of one batch and the epoch they belong to
    (so seeded, on-the-fly augmentation in any worker depends on ``(seed, epoch, index)`` only)."""

    indices: np.ndarray
    epoch: int


def _world(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    if num_replicas is None or rank is None:
        try:
            import torch.distributed as dist

            ready = dist.is_available() and dist.is_initialized()
        except ImportError:  # pragma: no cover - torch is a dependency
            ready = False
        num_replicas = num_replicas if num_replicas is not None else (dist.get_world_size() if ready else 1)
        rank = rank if rank is not None else (dist.get_rank() if ready else 0)
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise InvalidArgumentError(f"rank {rank} is not in a world of {num_replicas}")
    return num_replicas, rank


def epoch_order(size: int, *, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """``(size,)`` the order of items in ``epoch``: a permutation drawn from ``(seed, epoch)`` (or ``arange``)."""
    if not shuffle:
        return np.arange(size, dtype=np.int64)
    return np.random.default_rng([seed, epoch, 0x616D6173]).permutation(size).astype(np.int64)


class ShardedBatchSampler:
    """Batches of indices into a dataset of ``size`` items, this rank's share of each epoch, exactly once.

    Use with a map-style dataset whose ``__getitem__`` takes a batch (every amasskit dataset does)::

        sampler = ShardedBatchSampler(len(ds), batch_size=256, seed=0)
        loader = DataLoader(ds, sampler=sampler, batch_size=None, num_workers=2)
        for epoch in range(E):
            sampler.set_epoch(epoch)
            for batch in loader: ...

    Args:
        size: number of items. batch_size: items per batch.
        shuffle: a seeded permutation per epoch (else in order).
        seed: the permutation's seed (0 is a seed like any other).
        num_replicas, rank: the distributed world (default: from ``torch.distributed`` when initialised, else 1, 0).
        drop_last: drop this rank's last, partial batch.
        even: drop ``size % num_replicas`` items per epoch so every rank gets the same number of items.

    ``state_dict()`` / ``load_state_dict()`` record the epoch and how many batches were consumed, so a job restarted
    mid-epoch continues with the batches it had not seen (see :class:`amasskit.data.Loader`, which counts consumed
    batches past a DataLoader's prefetching).
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
        even: bool = False,
    ) -> None:
        if size < 0 or batch_size < 1:
            raise InvalidArgumentError(f"need size >= 0 and batch_size >= 1, got {size} and {batch_size}")
        self.size, self.batch_size = int(size), int(batch_size)
        self.shuffle, self.seed = shuffle, int(seed)
        self.num_replicas, self.rank = _world(num_replicas, rank)
        self.drop_last, self.even = drop_last, even
        self.epoch = 0
        self.start = 0  # batches of this epoch already consumed (resuming)

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` from the next iteration on (and start it from its first batch)."""
        if epoch != self.epoch:
            self.start = 0
        self.epoch = int(epoch)

    def rank_indices(self) -> np.ndarray:
        """This rank's items of the current epoch, in order."""
        order = epoch_order(self.size, seed=self.seed, epoch=self.epoch, shuffle=self.shuffle)
        if self.even:
            order = order[: self.size - self.size % self.num_replicas]
        return order[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        total = self.size - (self.size % self.num_replicas if self.even else 0)
        n = len(range(self.rank, total, self.num_replicas))
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[IndexBatch]:
        mine = self.rank_indices()
        count = len(mine) // self.batch_size if self.drop_last else math.ceil(len(mine) / self.batch_size)
        start, self.start = self.start, 0  # a resumed position applies to one iteration
        for b in range(start, count):
            yield IndexBatch(mine[b * self.batch_size : (b + 1) * self.batch_size], self.epoch)

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """The position to resume from: ``consumed`` batches of the current epoch have been used."""
        return {"epoch": self.epoch, "seed": self.seed, "consumed": int(consumed or 0),
                "num_replicas": self.num_replicas, "size": self.size, "batch_size": self.batch_size}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration yields the current epoch's batches after the ``consumed`` ones.

        Raises:
            ValueError: the state is from a sampler over another dataset size, batch size, seed or world.
        """
        for key in ("seed", "num_replicas", "size", "batch_size"):
            if state[key] != getattr(self, key):
                raise InvalidArgumentError(
                    f"cannot resume: the saved {key} is {state[key]}, this sampler's is {getattr(self, key)}"
                )
        self.epoch = int(state["epoch"])
        self.start = int(state["consumed"])


class ShardedSampler:
    """The per-item form of :class:`ShardedBatchSampler` (``batch_size`` 1, plain ints), for a standard
    ``DataLoader(ds, batch_size=B, sampler=ShardedSampler(len(ds)))``, exactly once across ranks."""

    def __init__(self, size: int, **kwargs: Any) -> None:
        self._batches = ShardedBatchSampler(size, 1, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        self._batches.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self._batches)

    def __iter__(self) -> Iterator[int]:
        for batch in self._batches:
            yield int(batch.indices[0])

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        return self._batches.state_dict(consumed)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._batches.load_state_dict(state)
