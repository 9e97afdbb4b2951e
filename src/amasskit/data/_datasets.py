"""Map-style PyTorch datasets over a prepared store: windows (clips), single frames, whole sequences.

Every dataset keeps only the store's path when pickled; each process (DataLoader worker, fork or spawn) opens its own
memory maps on first use. ``dataset[i]`` gives one item; ``dataset[indices]`` (a sequence, array or tensor of ints, or
an :class:`~amasskit.data.IndexBatch`) gives a whole batch gathered with one vectorised copy per field, which is what
``DataLoader(dataset, sampler=ShardedBatchSampler(...), batch_size=None)`` asks for.

Items are dicts of tensors keyed by field name:

=================  ======================  =========================================================
key                clip (batch adds ``B``)  meaning
=================  ======================  =========================================================
``root_orient``    ``(L, R)``               pelvis orientation, ``R`` by ``rotation`` (below)
``pose_body``      ``(L, 21, R)``           body joints
``pose_hand``      ``(L, 30, R)``           hands (SMPL+H, SMPL-X)
``pose_jaw``       ``(L, R)``               SMPL-X
``pose_eye``       ``(L, 2, R)``            SMPL-X
``trans``          ``(L, 3)``               metres, Z-up world
``dmpls``          ``(L, 8)``               where the store has them
``joints``         ``(L, J, 3)``            where the store was prepared with a body model
``betas``          ``(S,)``                 float32
``gender``         ``()``                   int64: 0 male, 1 female, 2 neutral
``fps``            ``()``                   float64
``sequence``       ``()``                   int64: the sequence's number in the store
``start``          ``()``                   int64: the window's first frame within its sequence
=================  ======================  =========================================================

``R`` is 3 (``rotvec``), 4 (``quat``, XYZW), ``(3, 3)`` (``rotmat``) or 6 (``6d``). Provenance (source file,
sub-dataset, subject, augmentation) is ``dataset.provenance(item["sequence"])``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .._util.paths import user_path
from ..conventions import POSE_PARTS, ROTATION_SHAPES, ROTATIONS
from ..errors import ConfigError, InvalidArgumentError
from ..rotations import from_rotmat, to_rotmat
from ..store import Store
from ._augment import Augment, counter_uniform
from ._samplers import IndexBatch
from ._windows import WindowIndex

__all__ = ["ClipDataset", "FrameDataset", "SequenceDataset", "pad_collate"]


Transform = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
#: ``alloc(shape, dtype)``: an array to gather into, or None (then a new one is made)
Alloc = Callable[[tuple[int, ...], np.dtype[Any]], np.ndarray | None]


def _as_indices(key: Any) -> tuple[np.ndarray, int | None, bool]:
    """``(indices, epoch, single)`` from an int, a sequence/array/tensor of ints, or an IndexBatch."""
    if isinstance(key, IndexBatch):
        return np.asarray(key.indices, dtype=np.int64), key.epoch, False
    if isinstance(key, (int, np.integer)):
        return np.array([int(key)], dtype=np.int64), None, True
    if isinstance(key, torch.Tensor):
        key = key.cpu().numpy()
    array = np.asarray(key)
    if array.ndim == 0:
        return array.astype(np.int64).reshape(1), None, True
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"index with an int, a 1-D sequence of ints or an IndexBatch, not {type(key).__name__}"
        )
    return array.astype(np.int64), None, False


class _StoreDataset(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """What every dataset shares: the store opened lazily per process, field selection, rotation conversion."""

    def __init__(
        self,
        store: str | os.PathLike[str] | Store,
        *,
        fields: Sequence[str] | None = None,
        rotation: str | None = None,
        transform: Transform | None = None,
        augment: Augment | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.path = store.path if isinstance(store, Store) else user_path(store)
        opened = store if isinstance(store, Store) else Store(self.path)
        self.stored_rotation: str = opened.manifest.get("rotation", "rotvec")
        self.rotation = rotation or self.stored_rotation
        if self.rotation not in ROTATION_SHAPES:
            raise ConfigError(f"rotation must be one of {ROTATIONS}, got {self.rotation!r}", key="rotation")
        available = list(opened.fields)
        self.fields = list(fields) if fields is not None else available
        missing = [f for f in self.fields if f not in available]
        if missing:
            raise KeyError(f"{self.path}: no field {missing} (the store has {available})")
        self.augment = augment if augment is not None and augment.active else None
        if self.augment is not None and not {"root_orient", "trans"} <= set(available):
            raise InvalidArgumentError("augmentation needs root_orient and trans in the store")
        self.transform = transform
        self.epoch = 0
        self.device = None if device is None else torch.device(_pick_device(device))
        self._store: Store | None = opened
        self._arrays: dict[str, np.ndarray] | None = None
        self._on_device: dict[str, torch.Tensor] | None = None

    # -- per-process state: never pickled, reopened on first use
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_store"] = None
        state["_arrays"] = None
        state["_on_device"] = None
        return state

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.path)
        return self._store

    def set_epoch(self, epoch: int) -> None:
        """The epoch on-the-fly augmentation draws from when indexed by plain ints (an IndexBatch carries its own)."""
        self.epoch = int(epoch)

    def provenance(self, sequence: int) -> dict[str, Any]:
        """Source file, sub-dataset, subject, name, augmentation of sequence ``sequence``."""
        return dict(self.store.sequences[int(sequence)])

    def _loaded_fields(self) -> list[str]:
        need = set(self.fields)
        if self.augment is not None:  # the augmentation reads these even when the caller did not ask for them
            need |= {"root_orient", "trans"} | ({"joints"} if "joints" in self.store.fields else set())
        return [f for f in self.store.fields if f in need]

    def _converting(self) -> bool:
        return self.rotation != self.stored_rotation or self.augment is not None

    def _gather(self, rows: np.ndarray, alloc: Alloc | None = None) -> dict[str, torch.Tensor]:
        """``rows (...)`` frame numbers -> each field ``(..., *tail)``, one vectorised copy per field, into arrays
        from ``alloc`` where given (and it has room)."""
        names = self._loaded_fields()
        if self.device is None:
            if self._arrays is None:  # plain views: np.memmap's subclass hooks cost more than a small take
                self._arrays = {n: np.asarray(a) for n, a in self.store.fields.items()}
            flat = rows.reshape(-1)
            out = {}
            for name in names:
                array = self._arrays[name]
                target = None if alloc is None else alloc((flat.size, *array.shape[1:]), array.dtype)
                if target is None:
                    taken = array.take(flat, axis=0)
                else:  # rows are valid by construction (windows are located with a range check), and "clip"
                    taken = array.take(flat, axis=0, out=target, mode="clip")  # writes straight into out
                out[name] = torch.from_numpy(taken).reshape(*rows.shape, *array.shape[1:])
            return out
        if self._on_device is None:  # the whole of each field, once per process, on the device
            self._on_device = {n: torch.from_numpy(np.array(self.store.fields[n])).to(self.device)
                               for n in self._loaded_fields()}  # fmt: skip
        index = torch.from_numpy(rows.reshape(-1)).to(self.device)
        return {
            n: self._on_device[n].index_select(0, index).reshape(*rows.shape, *self._on_device[n].shape[1:])
            for n in names
        }

    def _finish(
        self, batch: dict[str, torch.Tensor], index: np.ndarray, epoch: int
    ) -> dict[str, torch.Tensor]:
        """Augment (in rotation matrices) and convert rotations to the requested representation."""
        if self._converting():
            for name in POSE_PARTS:
                if name in batch:
                    batch[name] = to_rotmat(batch[name].to(torch.float64), self.stored_rotation)
            if self.augment is not None:
                dtype = batch["trans"].dtype
                batch = self.augment.apply(
                    {k: (v.to(torch.float64) if k in ("trans", "joints") else v) for k, v in batch.items()},
                    index, epoch,
                )  # fmt: skip
                batch["trans"] = batch["trans"].to(dtype)
                if "joints" in batch:
                    batch["joints"] = batch["joints"].to(dtype)
            stored = str(next(iter(self.store.fields.values())).dtype)  # float32 or float64, as prepared
            for name in POSE_PARTS:
                if name in batch:
                    batch[name] = from_rotmat(batch[name], self.rotation).to(getattr(torch, stored))
        return {k: v for k, v in batch.items() if k in self.fields}

    def _meta(self, sequence: np.ndarray) -> dict[str, torch.Tensor]:
        s = self.store
        out = {
            "betas": torch.from_numpy(s.betas[sequence]),
            "gender": torch.from_numpy(s.gender[sequence].astype(np.int64)),
            "fps": torch.from_numpy(s.fps[sequence]),
            "sequence": torch.from_numpy(sequence.astype(np.int64)),
        }
        if self.device is not None:
            out = {k: v.to(self.device) for k, v in out.items()}
        return out


def _pick_device(device: str | torch.device) -> str | torch.device:
    """``auto``: the GPU when there is one, else the CPU (the fallback CI runs)."""
    if str(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class ClipDataset(_StoreDataset):
    """Every window of ``clip_length`` frames, every ``stride`` frames, of every sequence long enough.

    Args:
        store: a store folder (one split) or an open :class:`~amasskit.store.Store`.
        clip_length: frames per window (``L``).
        stride: frames between window starts (default ``clip_length``: windows do not overlap; 1: every window).
        fields: which fields to return (default: all the store has).
        rotation: the representation of rotations returned (default: as stored).
        transform: called on each item (or on each gathered batch) last.
        augment: on-the-fly augmentation (:class:`~amasskit.data.Augment`).
        device: None (default): gather from the memory maps with numpy, works in DataLoader workers. ``"cuda"``,
            ``"cpu"`` or ``"auto"``: hold the fields as tensors on that device (loaded once per process) and gather
            there; use it in the main process (``num_workers=0``).

    ``len(dataset)`` is the exact number of windows; ``window_weights(by=...)`` gives per-window weights for a
    ``WeightedRandomSampler``.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | Store,
        clip_length: int,
        *,
        stride: int | None = None,
        fields: Sequence[str] | None = None,
        rotation: str | None = None,
        transform: Transform | None = None,
        augment: Augment | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__(
            store, fields=fields, rotation=rotation, transform=transform, augment=augment, device=device
        )
        s = self.store
        self.clip_length = int(clip_length)
        self.windows = WindowIndex(s.offset, s.length, self.clip_length, stride or self.clip_length)

    def __len__(self) -> int:
        return len(self.windows)

    def window_weights(self, by: str = "frames") -> torch.Tensor:
        """Per-window sampling weights: ``frames`` (sequences weigh by duration) or ``sequence`` (equally)."""
        return torch.from_numpy(self.windows.weights(by))

    def gather(
        self, index: np.ndarray, *, epoch: int | None = None, alloc: Alloc | None = None
    ) -> dict[str, torch.Tensor]:
        """Windows ``index (B,)`` as one batch: each field ``(B, L, ...)``, metadata ``(B, ...)``. ``alloc``
        (used only where fields go out as stored) gives the arrays to gather into, e.g. a shared buffer."""
        index = np.asarray(index, dtype=np.int64)
        sequence, start = self.windows.locate(index)
        rows = (self.windows.offsets[sequence] + start)[:, None] + np.arange(self.clip_length)
        gathered = self._gather(rows, None if self._converting() else alloc)
        batch = self._finish(gathered, index, self.epoch if epoch is None else epoch)
        batch |= self._meta(sequence)
        batch["start"] = torch.from_numpy(start).to(batch["sequence"].device)
        return batch

    def __getitem__(self, key: Any) -> dict[str, torch.Tensor]:
        index, epoch, single = _as_indices(key)
        batch = self.gather(index, epoch=epoch)
        if single:
            batch = {k: v[0] for k, v in batch.items()}
        return self.transform(batch) if self.transform is not None else batch

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        """What a standard ``DataLoader(dataset, batch_size=B)`` calls once per batch: one vectorised gather, split
        into items (views into it) for the DataLoader's collate; ``transform`` still sees single items."""
        batch = self.gather(np.asarray(indices, dtype=np.int64))
        keys = list(batch)
        items = [dict(zip(keys, values, strict=True))
                 for values in zip(*(batch[k].unbind(0) for k in keys), strict=True)]  # fmt: skip
        if self.transform is not None:
            items = [self.transform(item) for item in items]
        return items


class FrameDataset(ClipDataset):
    """Single poses: every frame of every sequence (``stride`` > 1 takes every ``stride``-th). Fields are
    ``(...)`` per item (no time axis), ``(B, ...)`` per batch."""

    def __init__(self, store: str | os.PathLike[str] | Store, *, stride: int = 1, **kwargs: Any) -> None:
        super().__init__(store, 1, stride=stride, **kwargs)

    def gather(
        self, index: np.ndarray, *, epoch: int | None = None, alloc: Alloc | None = None
    ) -> dict[str, torch.Tensor]:
        batch = super().gather(index, epoch=epoch, alloc=alloc)
        return {k: (v[:, 0] if k in self.fields else v) for k, v in batch.items()}


class SequenceDataset(_StoreDataset):
    """Whole sequences, variable length; ``pad_collate`` batches them with a mask.

    Args:
        crop: at most this many frames per item: a window at a seeded random start (a function of
            ``(seed, epoch, sequence)``) when the sequence is longer; None: whole sequences.
        seed: the crop's seed. Other arguments as :class:`ClipDataset` (``device`` excepted).
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | Store,
        *,
        crop: int | None = None,
        seed: int = 0,
        fields: Sequence[str] | None = None,
        rotation: str | None = None,
        transform: Transform | None = None,
        augment: Augment | None = None,
    ) -> None:
        super().__init__(store, fields=fields, rotation=rotation, transform=transform, augment=augment)
        if crop is not None and crop < 1:
            raise InvalidArgumentError(f"crop must be >= 1, got {crop}")
        self.crop, self.seed = crop, int(seed)

    def __len__(self) -> int:
        return len(self.store.offset)

    def __getitem__(self, key: Any) -> dict[str, torch.Tensor]:
        if not isinstance(key, (int, np.integer)):
            raise TypeError("SequenceDataset items are single sequences; batch them with pad_collate")
        i = int(key)
        if not -len(self) <= i < len(self):
            raise IndexError(f"sequence {i} out of range for {len(self)}")
        i %= len(self)
        s = self.store
        length = int(s.length[i])
        start = 0
        if self.crop is not None and length > self.crop:
            u = counter_uniform(self.seed, self.epoch, np.array([i]), 99)[0, 0]
            start = int(u * (length - self.crop + 1))
            length = self.crop
        rows = (int(s.offset[i]) + start + np.arange(length))[None]
        index = np.array([i])
        batch = self._finish(self._gather(rows), index, self.epoch)
        item = {k: v[0] for k, v in batch.items()} | {k: v[0] for k, v in self._meta(index).items()}
        item["start"] = torch.tensor(start)
        return self.transform(item) if self.transform is not None else item


def pad_collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Batch variable-length items: time-varying fields padded with zeros to ``(B, T_max, ...)``, plus
    ``mask (B, T_max)`` (True on real frames) and ``length (B,)``; per-item values stacked."""
    lengths = torch.tensor([len(item["trans"]) if "trans" in item else _length(item) for item in items])
    T = int(lengths.max()) if len(items) else 0
    out: dict[str, torch.Tensor] = {"length": lengths, "mask": torch.arange(T)[None] < lengths[:, None]}
    for key in items[0]:
        values = [item[key] for item in items]
        if values[0].ndim >= 1 and key not in ("betas",):
            padded = values[0].new_zeros((len(items), T, *values[0].shape[1:]))
            for b, v in enumerate(values):
                padded[b, : len(v)] = v
            out[key] = padded
        else:
            out[key] = torch.stack(values)
    return out


def _length(item: dict[str, torch.Tensor]) -> int:
    for key, value in item.items():
        if key != "betas" and value.ndim >= 1:
            return len(value)
    raise InvalidArgumentError("an item with no time-varying field")
