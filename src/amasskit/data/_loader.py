"""A DataLoader over a dataset and a :class:`ShardedBatchSampler` that knows how many batches its user consumed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from ._samplers import ShardedBatchSampler

__all__ = ["Loader"]


class Loader:
    """Batches of ``dataset`` (any amasskit dataset indexable by a batch), exactly once per epoch across workers
    and ranks, resumable mid-epoch.

    Args:
        dataset: a :class:`ClipDataset` or :class:`FrameDataset`.
        batch_size, shuffle, seed, num_replicas, rank, drop_last, even: as :class:`ShardedBatchSampler`.
        num_workers, multiprocessing_context, pin_memory, prefetch_factor, persistent_workers: passed to
            :class:`torch.utils.data.DataLoader` (``batch_size=None``: each sampler batch is one gather).

    Example::

        loader = Loader(ClipDataset(store, 32), batch_size=256, num_workers=2)
        for epoch in range(start_epoch, E):
            loader.set_epoch(epoch)
            for batch in loader:
                ...
                checkpoint["loader"] = loader.state_dict()   # restart: loader.load_state_dict(...)
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
        even: bool = False,
        **loader_options: Any,
    ) -> None:
        self.dataset = dataset
        self.sampler = ShardedBatchSampler(len(dataset), batch_size, shuffle=shuffle, seed=seed,
                                           num_replicas=num_replicas, rank=rank, drop_last=drop_last,
                                           even=even)  # fmt: skip
        self.loader = torch.utils.data.DataLoader(
            dataset, sampler=self.sampler, batch_size=None, **loader_options
        )
        self.consumed = 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.sampler.epoch:
            self.consumed = 0
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        self.consumed = self.sampler.start
        for batch in self.loader:
            self.consumed += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The epoch and the number of its batches already handed out by this loader."""
        return self.sampler.state_dict(self.consumed)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
        self.consumed = self.sampler.start
