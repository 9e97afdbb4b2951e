"""Synthetic AMASS: motion trees, release archives and body-model files that look real to every reader.

Real AMASS and the body models are licensed, so the demo, the tests and the benchmarks run on these. Every file
written is labelled synthetic (``amasskit_meta`` in each npz, ``SYNTHETIC.txt`` and ``synth.json`` in each tree).

* :func:`synth_tree` - an AMASS tree of either release, optionally packed into per-dataset archives.
* :func:`synth_sequence` / :func:`plan_tree` - the pieces, for tests.
* :class:`MotionStyle` / :func:`motion_arrays` - plausible motion as a closed-form function of time.
* :func:`synth_pose_set` - a clean pose set sampled from synthetic motion as VPoser samples AMASS;
  :class:`PoseManifold` - a known low-dimensional family of poses (true distances by brute force).
* :func:`write_body_models` / :func:`body_model_arrays` - SMPL+H, DMPL and SMPL-X files with the real keys and shapes
  on amasskit's own humanoid, for the body-model tests, and the deformation-transfer files between them
  (:func:`transfer_coo`, :func:`mask_ids`) in the released pickle layout (:func:`dumps_released`).
"""

from ._body_models import (
    BODY_MODEL_SIZES,
    body_model_arrays,
    dmpl_arrays,
    humanoid_joints,
    mask_ids,
    transfer_coo,
    write_body_models,
)
from ._lengths import DATASETS, DatasetSpec, LengthTable, find_lengths_table, load_lengths_table
from ._motion import MotionStyle, motion_arrays
from ._pickles import Ch, CscMatrix, dumps_released
from ._poses import PoseManifold, synth_pose_set
from ._tree import (
    SYNTHETIC_NOTE,
    FilePlan,
    SynthSummary,
    pack_archives,
    plan_tree,
    synth_sequence,
    synth_tree,
)

__all__ = [
    "BODY_MODEL_SIZES",
    "DATASETS",
    "SYNTHETIC_NOTE",
    "Ch",
    "CscMatrix",
    "DatasetSpec",
    "FilePlan",
    "LengthTable",
    "MotionStyle",
    "PoseManifold",
    "SynthSummary",
    "body_model_arrays",
    "dmpl_arrays",
    "dumps_released",
    "find_lengths_table",
    "humanoid_joints",
    "load_lengths_table",
    "mask_ids",
    "motion_arrays",
    "pack_archives",
    "plan_tree",
    "synth_pose_set",
    "synth_sequence",
    "synth_tree",
    "transfer_coo",
    "write_body_models",
]
