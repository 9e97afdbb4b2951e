"""Synthetic AMASS: motion trees, release archives and body-model files that look real to every reader.

Real AMASS and the body models are licensed, so the demo, the tests and the benchmarks run on these. Every file
written is labelled synthetic (``amasskit_meta`` in each npz, ``SYNTHETIC.txt`` and ``synth.json`` in each tree).

* :func:`synth_tree` - an AMASS tree of either release, optionally packed into per-dataset archives.
* :func:`synth_sequence` / :func:`plan_tree` - the pieces, for tests.
* :class:`MotionStyle` / :func:`motion_arrays` - plausible motion as a closed-form function of time.
"""

from ._lengths import DATASETS, DatasetSpec, LengthTable, find_lengths_table, load_lengths_table
from ._motion import MotionStyle, motion_arrays
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
    "DATASETS",
    "SYNTHETIC_NOTE",
    "DatasetSpec",
    "FilePlan",
    "LengthTable",
    "MotionStyle",
    "SynthSummary",
    "find_lengths_table",
    "load_lengths_table",
    "motion_arrays",
    "pack_archives",
    "plan_tree",
    "synth_sequence",
    "synth_tree",
]
