"""A DataLoader over a dataset and a :class:`ShardedBatchSampler` that knows how many batches its user consumed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ._samplers import IndexBatch, ShardedBatchSampler
from ._slots import Packed, SlotDataset, SlotRing

__all__ = ["Loader"]


class Loader:
    """Batches of ``dataset`` (any amasskit dataset indexable by a batch), exactly once per epoch across workers
    and ranks, resumable mid-epoch.

    Args:
        dataset: a :class:`ClipDataset` or :class:`FrameDataset`.
        batch_size, shuffle, seed, num_replicas, rank, drop_last, even: as :class:`ShardedBatchSampler`.
        shared_slots: with workers, hand batches over through a few reused shared-memory buffers per worker
            instead of new shared memory per tensor per batch (see :mod:`amasskit.data._slots`; the batch's memory
            is reused once every tensor of it, and every view of one, is gone). Off with ``pin_memory`` or where
            the buffers would take more than a quarter of the free space in ``/dev/shm``.
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
        shared_slots: bool = True,
        **loader_options: Any,
    ) -> None:
        self.dataset = dataset
        self.sampler = ShardedBatchSampler(len(dataset), batch_size, shuffle=shuffle, seed=seed,
                                           num_replicas=num_replicas, rank=rank, drop_last=drop_last,
                                           even=even)  # fmt: skip
        workers = int(loader_options.get("num_workers", 0))
        self.ring: SlotRing | None = None
        if shared_slots and workers > 0 and not loader_options.get("pin_memory") and len(dataset) > 0:
            probe = dataset[IndexBatch(np.arange(min(batch_size, len(dataset))), 0)]  # a full-size batch
            per_worker = (
                loader_options.get("prefetch_factor") or 2
            ) + 2  # in flight, reordered, in the user's hand
            self.ring = SlotRing.for_batch(probe, workers=workers, per_worker=per_worker)
        self.loader = torch.utils.data.DataLoader(
            dataset if self.ring is None else SlotDataset(dataset, self.ring),
            sampler=self.sampler, batch_size=None, **loader_options,
        )  # fmt: skip
        self.consumed = 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.sampler.epoch:
            self.consumed = 0
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        self.consumed = self.sampler.start
        if self.loader.num_workers == 0 and not self.loader.pin_memory:
            # nothing for the DataLoader to do but call the dataset: call it directly (a quarter of a small
            # batch's time went to the DataLoader's per-batch machinery: profiler scopes, default_convert)
            for key in self.sampler:
                self.consumed += 1
                yield self.dataset[key]
            return
        for batch in self.loader:
            self.consumed += 1
            yield self.ring.open(batch) if isinstance(batch, Packed) and self.ring is not None else batch

    def state_dict(self) -> dict[str, Any]:
        """The epoch and the number of its batches already handed out by this loader."""
        return self.sampler.state_dict(self.consumed)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
        self.consumed = self.sampler.start
