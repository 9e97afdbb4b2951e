"""A drop-in for llamass's ``AMASS`` dataset, with its known bugs fixed.

``AMASS(amass_location, clip_length, overlapping, keep=0.8, transform=None, data_keys=..., file_list_seed=0,
shuffle=False, seed=None)`` takes llamass's arguments and yields llamass's items: ``poses (L, 156)``, ``dmpls (L, 8)``,
``trans (L, 3)``, ``betas (L, 16)`` (the file's betas on every frame), ``gender (L,)`` (-1 male, 0 neutral, 1 female),
float32 numpy arrays (int64 for gender) passed through ``transform`` one key at a time. ``amass_location`` is an
unpacked AMASS tree (SMPL+H release) or a store prepared with ``rotation: rotvec``.

Fixed, compared with llamass 0.1:

* **Off-by-one at the end of each file**: llamass yields windows with ``start + clip_length < stop``, so the last
  window of every file is never seen; here ``start + clip_length <= stop``.
* **``len`` disagrees with iteration**: llamass counts ``n - clip_length + 1`` overlapping windows but yields one fewer
  per file; here ``len`` is exactly the number of items an epoch yields, with any number of workers.
* **Files dropped between workers**: llamass splits the file list into ``int(n / workers)``-sized slices and drops the
  remainder; here worker ``w`` of ``W`` takes files ``w, w + W, ...``, so every file is read by exactly one worker.
* **Seed 0 ignored**: llamass treats ``seed=0`` as "no seed" and draws a random one; here 0 is a seed like any other.
* **``transform=None`` crashes**: llamass calls ``None``; here it means no transform.

Files that are not motion files or cannot be read are logged and listed in ``skipped`` instead of stopping the
epoch: when the dataset is made (headers), and during an epoch (a file damaged, removed or changed in length since;
such a file's windows are then missing from that epoch, and ``skipped`` of the process that iterated names it: the
main process without workers, each worker's log with them). Window starts follow llamass: ``keep`` keeps the middle fraction of each file (``int(n * drop)`` to
``int(n * keep + n * drop)``), then windows start every frame (``overlapping``) or every ``clip_length`` frames.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import AmassFileError, InvalidArgumentError
from ..io import FileKind, classify_path, read, read_header

__all__ = ["AMASS", "keep_slice"]

logger = logging.getLogger(__name__)

_GENDER_CODES = {"male": -1, "neutral": 0, "female": 1}
DEFAULT_KEYS = ("poses", "dmpls", "trans", "betas", "gender")


def keep_slice(n: int, keep: float) -> slice:
    """llamass's viable frames of an ``n``-frame file: the middle ``keep`` fraction (its formula exactly, float
    rounding included, so both loaders cut the same frames)."""
    drop = (1.0 - keep) / 2.0
    return slice(int(n * drop), int(n * keep + n * drop))


class AMASS(torch.utils.data.IterableDataset[dict[str, Any]]):
    """llamass's ``AMASS`` iterable dataset over an AMASS tree or a store (see the module docstring)."""

    def __init__(
        self,
        amass_location: str | os.PathLike[str],
        clip_length: int,
        overlapping: bool,
        keep: float = 0.8,
        transform: Callable[[Any], Any] | None = None,
        data_keys: Sequence[str] = DEFAULT_KEYS,
        file_list_seed: int = 0,
        shuffle: bool = False,
        seed: int | None = None,
    ) -> None:
        if not 0.0 < keep <= 1.0:
            raise InvalidArgumentError("keep must be in (0, 1]")
        if clip_length < 1:
            raise InvalidArgumentError("clip_length must be >= 1")
        self.location = Path(amass_location)
        self.clip_length, self.overlapping, self.keep = int(clip_length), bool(overlapping), float(keep)
        self.transform = transform
        self.data_keys = tuple(data_keys)
        self.shuffle = shuffle
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
        self.skipped: list[tuple[str, str]] = []  # (path, error) of files left out
        self._opened: Any = None  # the store, opened on first use in each process
        self._store = (self.location / "manifest.json").is_file()
        if self._store:
            from ..store import Store

            store = Store(self.location)
            if store.manifest.get("rotation", "rotvec") != "rotvec":
                raise InvalidArgumentError(
                    f"{self.location}: the llamass layout needs a store prepared with rotation: rotvec"
                )
            self.sources: list[str | int] = list(range(len(store)))
            lengths = [int(n) for n in store.length]
        else:
            self.sources, lengths = [], []
            for path in sorted(
                p for p in self.location.rglob("*.npz") if classify_path(p) is FileKind.MOTION
            ):
                try:
                    lengths.append(read_header(path).num_frames)
                except AmassFileError as exc:  # not a motion file, damaged: reported and left out
                    logger.warning("skipped %s", exc)
                    self.skipped.append((str(path), f"{type(exc).__name__}: {exc}"))
                    continue
                self.sources.append(str(path))
        order = list(range(len(self.sources)))
        random.Random(file_list_seed).shuffle(order)
        self.sources = [self.sources[i] for i in order]
        self.lengths = [lengths[i] for i in order]

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_opened": None}  # memory maps are reopened per worker, never pickled

    def _starts(self, n: int) -> range:
        viable = keep_slice(n, self.keep)
        step = 1 if self.overlapping else self.clip_length
        return range(viable.start, viable.stop - self.clip_length + 1, step)

    def __len__(self) -> int:
        return sum(len(self._starts(n)) for n in self.lengths)

    def _arrays(self, source: str | int) -> dict[str, Any]:
        """The file's (or stored sequence's) arrays in llamass's layout."""
        if isinstance(source, int):
            from ..store import Store

            if self._opened is None:  # once per process (a worker reopens it; see __getstate__)
                self._opened = Store(self.location)
            store = self._opened
            seq = store[source]
            parts = [seq[k].reshape(len(seq["trans"]), -1) for k in ("root_orient", "pose_body", "pose_hand")]
            poses = np.concatenate(parts, axis=1)
            betas = np.zeros(16, np.float32)
            betas[: min(16, store.betas.shape[1])] = store.betas[source][:16]
            gender = store.gender_of(source).value
            dmpls = seq.get("dmpls", np.zeros((len(poses), 8), np.float32))
            trans = seq["trans"]
        else:
            s = read(source, dtype=np.float32)
            poses = _flat(s)
            betas = np.zeros(16, np.float32)
            betas[: min(16, len(s.betas))] = s.betas[:16]
            gender = s.gender.value
            dmpls = s.dmpls if s.dmpls is not None else np.zeros((s.num_frames, 8), np.float32)
            trans = s.trans
        return {"poses": np.asarray(poses, np.float32), "dmpls": np.asarray(dmpls, np.float32),
                "trans": np.asarray(trans, np.float32), "betas": betas, "gender": gender}  # fmt: skip

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        mine = list(range(worker, len(self.sources), workers))  # every file read by exactly one worker
        if self.shuffle:
            random.Random(self.seed).shuffle(mine)
        for k in mine:
            starts = list(self._starts(self.lengths[k]))
            if not starts:
                continue
            if self.shuffle:
                random.Random(self.seed * 1_000_003 + k).shuffle(starts)
            try:
                arrays = self._arrays(self.sources[k])
            except AmassFileError as exc:  # damaged or removed since the dataset was made: skipped, listed
                logger.warning("skipped %s", exc)
                self.skipped.append((str(self.sources[k]), f"{type(exc).__name__}: {exc}"))
                continue
            if len(arrays["trans"]) != self.lengths[k]:
                error = (f"CorruptFileError: {self.sources[k]}: has {len(arrays['trans'])} frames, "
                         f"{self.lengths[k]} when the dataset was made")  # fmt: skip
                logger.warning("skipped %s", error)
                self.skipped.append((str(self.sources[k]), error))
                continue
            L = self.clip_length
            for start in starts:
                item: dict[str, Any] = {}
                for key in ("poses", "dmpls", "trans"):
                    if key in self.data_keys:
                        item[key] = arrays[key][start : start + L].copy()  # owned and writable, as llamass
                if "betas" in self.data_keys:
                    item["betas"] = np.repeat(arrays["betas"][None], L, axis=0)
                if "gender" in self.data_keys:
                    item["gender"] = np.full(L, _GENDER_CODES[arrays["gender"]], dtype=np.int64)
                yield item if self.transform is None else {k2: self.transform(v) for k2, v in item.items()}


def _flat(seq: Any) -> np.ndarray:
    """``(T, 156)`` SMPL+H pose vector: root, 21 body joints, 30 hand joints."""
    T = seq.num_frames
    return np.concatenate([seq.root_orient.reshape(T, -1), seq.pose_body.reshape(T, -1),
                           seq.pose_hand.reshape(T, -1)], axis=1)  # fmt: skip
