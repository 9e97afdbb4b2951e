"""Reused shared-memory batch buffers between DataLoader workers and the main process.

A DataLoader worker normally returns each batch as fresh tensors in new shared-memory segments: one segment per
tensor, created, page-faulted, passed by file descriptor and mapped again by the main process, every batch. For a
gather that takes well under a millisecond that hand-over costs more than the work (measured: about 4 ms for a
ten-field batch of 256 frames; 5-7 ms for one of 256 x 32 frames on the project's 2-core machine). Here each worker
owns a few slots, shared buffers allocated once before the workers start; it copies its batch into a free slot and
returns only the slot's number and layout. The main process wraps the slot's bytes as tensors without copying; the
slot becomes free again when the last tensor of that batch, and every view of one, is gone (the tensors hold the
numpy arrays they wrap, and each array carries a finaliser). A worker that finds none of its slots free, or a batch
that does not fit, falls back to the ordinary hand-over, so nothing depends on how long a user keeps a batch.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._samplers import IndexBatch

__all__ = ["Bump", "Packed", "SlotDataset", "SlotRing"]

log = logging.getLogger(__name__)

_ALIGN = 64
#: at most this fraction of the free space under /dev/shm goes to slots (a full tmpfs kills processes with SIGBUS)
_SHM_SHARE = 0.25


@dataclass(frozen=True)
class Packed:
    """A batch left in slot ``slot``: per key ``(offset, numpy dtype string, shape)``."""

    slot: int
    layout: dict[str, tuple[int, str, tuple[int, ...]]]


def _slot_bytes(batch: Any) -> int | None:
    """The bytes ``batch`` takes in a slot (each tensor aligned), or None when it cannot go into one."""
    if not isinstance(batch, dict):
        return None
    total = 0
    for value in batch.values():
        if not isinstance(value, torch.Tensor) or value.device.type != "cpu" or value.dtype == torch.bfloat16:
            return None
        total += -(-value.numel() * value.element_size() // _ALIGN) * _ALIGN
    return total


class SlotRing:
    """``workers x per_worker`` shared buffers of ``capacity`` bytes and a shared busy flag per slot.

    Only a worker sets its own slot busy (before writing); only the main process frees it (when the batch dies).
    """

    def __init__(self, workers: int, per_worker: int, capacity: int) -> None:
        self.workers, self.per_worker, self.capacity = workers, per_worker, capacity
        self.buffers = [
            torch.empty(capacity, dtype=torch.uint8).share_memory_() for _ in range(workers * per_worker)
        ]
        self.busy = torch.zeros(workers * per_worker, dtype=torch.uint8).share_memory_()
        self._arrays: list[np.ndarray] | None = None
        self._lock = threading.Lock()

    def __getstate__(
        self,
    ) -> dict[str, Any]:  # to spawned workers: the shared tensors travel, the rest is local
        return {k: v for k, v in self.__dict__.items() if k not in ("_arrays", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _arrays=None, _lock=threading.Lock())

    @classmethod
    def for_batch(cls, probe: Any, *, workers: int, per_worker: int) -> SlotRing | None:
        """A ring sized for batches like ``probe`` (a full-size batch), or None where it cannot or should not be."""
        capacity = _slot_bytes(probe)
        if capacity is None:
            return None
        total = capacity * workers * per_worker
        try:
            stat = os.statvfs("/dev/shm")
            free = stat.f_bavail * stat.f_frsize
        except OSError:  # no /dev/shm (not Linux): torch shares memory another way; keep the ring modest
            free = 4 << 30
        if total > _SHM_SHARE * free:
            log.info("batch slots need %.0f MiB, more than %.0f%% of /dev/shm's free %.0f MiB: not using them",
                     total / 2**20, 100 * _SHM_SHARE, free / 2**20)  # fmt: skip
            return None
        return cls(workers, per_worker, capacity)

    # -- in a worker
    def acquire(self, worker: int) -> int | None:
        """One of ``worker``'s free slots, now marked busy; None when all are in use."""
        for slot in range(worker * self.per_worker, (worker + 1) * self.per_worker):
            if self.busy[slot] == 0:
                self.busy[slot] = 1
                return slot
        return None

    def _array(self, slot: int) -> np.ndarray:
        if self._arrays is None:
            self._arrays = [b.numpy() for b in self.buffers]
        return self._arrays[slot]

    def allocator(self, slot: int) -> Bump:
        return Bump(self._array(slot))

    def pack(self, slot: int, batch: Any, bump: Bump) -> Any:
        """``batch`` left in ``slot`` as a :class:`Packed`: tensors already written there (by ``bump``) stay put,
        the rest are copied in. Where the batch cannot go into the slot, the slot is freed and ``batch`` returned."""
        size = _slot_bytes(batch)
        if size is None or size > self.capacity:
            self.busy[slot] = 0
            return batch
        base = self._array(slot)
        start = base.ctypes.data
        layout = {}
        for key, value in batch.items():
            dtype = value.numpy().dtype
            offset = value.data_ptr() - start
            if not (value.is_contiguous() and 0 <= offset < self.capacity and offset % _ALIGN == 0):
                target = bump(tuple(value.shape), dtype)
                if target is None:
                    self.busy[slot] = 0
                    return batch
                torch.from_numpy(target).copy_(value)
                offset = target.ctypes.data - start
            layout[key] = (offset, dtype.str, tuple(value.shape))
        return Packed(slot, layout)

    # -- in the main process
    def open(self, packed: Packed) -> dict[str, torch.Tensor]:
        """The batch in ``packed.slot`` as tensors over the slot's memory; the slot is freed when they all die."""
        base = self._array(packed.slot)
        remaining = [len(packed.layout)]
        busy, slot, lock = self.busy, packed.slot, self._lock

        def release() -> None:  # runs when the last tensor of this batch (and its views) is freed
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    busy[slot] = 0

        out = {}
        for key, (offset, dtype, shape) in packed.layout.items():
            dt = np.dtype(dtype)
            array = base[offset : offset + dt.itemsize * int(np.prod(shape))].view(dt).reshape(shape)
            weakref.finalize(array, release)
            out[key] = torch.from_numpy(array)
        if not out:
            busy[slot] = 0
        return out


class Bump:
    """Hands out consecutive, aligned pieces of one slot's bytes as arrays; None once it is full."""

    def __init__(self, buffer: np.ndarray) -> None:
        self.buffer, self.used = buffer, 0

    def __call__(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray | None:
        size = int(np.prod(shape)) * dtype.itemsize
        if self.used + size > len(self.buffer):
            return None
        array = self.buffer[self.used : self.used + size].view(dtype).reshape(shape)
        self.used += -(-size // _ALIGN) * _ALIGN
        return array


class SlotDataset(torch.utils.data.Dataset[Any]):
    """``dataset`` seen through a :class:`SlotRing`: in a DataLoader worker each batch goes into a slot."""

    def __init__(self, dataset: Any, ring: SlotRing) -> None:
        self.dataset, self.ring = dataset, ring

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Any) -> Any:
        info = torch.utils.data.get_worker_info()
        slot = None if info is None else self.ring.acquire(info.id)
        if slot is None:
            return self.dataset[key]
        bump = self.ring.allocator(slot)
        gather = getattr(self.dataset, "gather", None)
        if (
            isinstance(key, IndexBatch)
            and gather is not None
            and getattr(self.dataset, "transform", None) is None
        ):
            batch = gather(key.indices, epoch=key.epoch, alloc=bump)  # fields land in the slot directly
        else:
            batch = self.dataset[key]
        return self.ring.pack(slot, batch, bump)
