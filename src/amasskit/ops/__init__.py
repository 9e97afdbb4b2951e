"""Pure operations on sequences: resampling by time, trimming, canonicalisation, mirroring and augmentation.

Each takes a :class:`~amasskit.Sequence` and returns a new one (see :mod:`amasskit.ops._ops` for frames and the
pelvis-offset correction).
"""

from ._ops import (
    add_pose_noise,
    canonicalise,
    heading,
    mirror,
    resample,
    rotate_about_vertical,
    trim,
    trim_bounds,
)

__all__ = [
    "add_pose_noise",
    "canonicalise",
    "heading",
    "mirror",
    "resample",
    "rotate_about_vertical",
    "trim",
    "trim_bounds",
]
