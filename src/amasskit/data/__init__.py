"""PyTorch datasets, samplers and batch gathering over a prepared store, exact under workers and ranks.

* :class:`ClipDataset` - every window of ``L`` frames (exact ``len``, any sampler); :class:`FrameDataset` - single
  poses; :class:`SequenceDataset` + :func:`pad_collate` - whole sequences, padded with a mask.
* :class:`ShardedBatchSampler` / :class:`ShardedSampler` - every item exactly once per epoch across workers and
  ranks, order from ``(seed, epoch)`` only, ``set_epoch``, resumable state; batches gathered in one vectorised copy.
* :class:`HumanML3D` - HumanML3D's features as the text-to-motion loaders serve them (entries, windows, normalisation),
  every draw a function of ``(seed, epoch, index)``.
* :class:`Augment` - seeded, batched on-the-fly rotation about the vertical, mirroring and pose noise.
* :class:`Loader` - a DataLoader over a dataset and a sharded batch sampler that counts consumed batches, so its
  ``state_dict`` resumes exactly past the DataLoader's prefetching.
"""

from ._augment import Augment, counter_normal, counter_uniform
from ._datasets import ClipDataset, FrameDataset, SequenceDataset, pad_collate
from ._humanml3d import HumanML3D, HumanML3DEntry
from ._loader import Loader
from ._samplers import IndexBatch, ShardedBatchSampler, ShardedSampler, epoch_order
from ._windows import WindowIndex

__all__ = [
    "Augment",
    "ClipDataset",
    "FrameDataset",
    "HumanML3D",
    "HumanML3DEntry",
    "IndexBatch",
    "Loader",
    "SequenceDataset",
    "ShardedBatchSampler",
    "ShardedSampler",
    "WindowIndex",
    "counter_normal",
    "counter_uniform",
    "epoch_order",
    "pad_collate",
]
