"""Seeing the motion: rendered previews (skeleton, no body model needed) as MP4 or GIF.

* :func:`render` - inputs (AMASS npz, ``STORE#N``, joints ``.npy``) side by side or overlaid, to ``.mp4``/``.gif``.
* :func:`load_track`, :class:`Track`, :class:`View`, :func:`render_frames` - the pieces, for custom layouts.
* :func:`skeleton_joints` - forward kinematics of amasskit's built-in approximate skeleton.
* :class:`Viewer` - the interactive browser viewer (viser) behind ``amasskit view``.
* :func:`plot_catalog`, :func:`plot_store`, :func:`plot_prior_report` - a catalog, a store or a prior evaluation
  at a glance, as PNG (statistics:
  :func:`amasskit.store.store_stats`, also importable from here).
"""

from ._inputs import load_track, render
from ._plots import StoreStats, plot_catalog, plot_prior_report, plot_store, store_stats
from ._render import Track, View, frame_times, render_frames
from ._skeleton import SKELETON_PARENTS, SKELETON_REST, skeleton_joints, skeleton_joints_rotmat, tree_for
from ._video import find_ffmpeg, write_video
from ._viewer import Viewer

__all__ = [
    "SKELETON_PARENTS",
    "SKELETON_REST",
    "StoreStats",
    "Track",
    "View",
    "Viewer",
    "find_ffmpeg",
    "frame_times",
    "load_track",
    "plot_catalog",
    "plot_prior_report",
    "plot_store",
    "render",
    "render_frames",
    "skeleton_joints",
    "skeleton_joints_rotmat",
    "store_stats",
    "tree_for",
    "write_video",
]
