"""The named choices amasskit's options take, one ``Literal`` type each: the one place their names are written.

The library checks its arguments against these, and the command line offers exactly these (Typer reads a
``Literal`` as a choice list), so the two cannot drift apart. The module imports nothing heavy: ``amasskit --help``
lists the choices without importing torch.

Where a choice is named ``"posendf"``, it means *as Pose-NDF (Tiwari et al., ECCV 2022) does it*, and the option
that takes it says what "it" is; the stored value is the same in every context, since manifests and checkpoints
record it (renaming it would change their bytes and identities):

========================  =====================================  ==================================================
option                    ``"posendf"`` means                     the alternatives
========================  =====================================  ==================================================
``metric``                sum_j 1 - |<q_j, x_j>| (cosine-type)    ``geodesic``: sum_j acos |<q_j, x_j>| (half-angles)
``noise``                 Pose-NDF's additive quaternion noise    ``nrdf`` (NRDF's), ``haar``, ``mixture``
pose-set ``preset``       Pose-NDF's AMASS sampling               ``vposer`` (the same numbers, VPoser's name)
training ``preset``       Pose-NDF's network and loss weights     ``nrdf``
projection ``method``     Pose-NDF's gradient step                ``rdfgrad`` (NRDF's, on the manifold)
denoise ``preset``        Pose-NDF's denoising schedule           (the only one)
========================  =====================================  ==================================================
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "Decompressor",
    "ExportFormat",
    "FitSchedule",
    "HashKind",
    "HumanML3DMode",
    "JointSet",
    "LengthMode",
    "Metric",
    "NoiseScheme",
    "PoseSetPreset",
    "Precision",
    "ProjectionMethod",
    "Release",
    "TrainPreset",
    "values",
]

Metric = Literal["posendf", "geodesic"]
"""A pose distance over joint quaternions (``amasskit.prior.METRIC_DEFINITIONS``)."""
NoiseScheme = Literal["posendf", "nrdf", "haar", "mixture"]
"""How training poses are perturbed (``amasskit.prior.NoiseConfig``)."""
JointSet = Literal["body", "body+hands"]
"""The joints of a pose set: the 21 body joints, or 51 with the hands."""
PoseSetPreset = Literal["posendf", "vposer"]
"""How a pose set samples AMASS (``amasskit.prior.POSE_SET_PRESETS``)."""
TrainPreset = Literal["nrdf", "posendf"]
"""A distance field's activation, learning rate and loss weights (``amasskit.prior.TRAIN_PRESETS``)."""
Precision = Literal["auto", "fp32", "bf16"]
"""Training arithmetic; ``auto``: bf16 where the device computes it fast."""
ProjectionMethod = Literal["rdfgrad", "posendf"]
"""The step of the projection onto the pose manifold (``amasskit.prior.project_to_manifold``)."""
FitSchedule = Literal["accurate", "fast"]
"""A body-model conversion's fit schedule (``amasskit.convert.SCHEDULES``)."""
ExportFormat = Literal["hdf5", "pt", "npz"]
"""A store's export format (``amasskit.store.export_store``)."""
HumanML3DMode = Literal["exact", "fixed"]
"""How ``amasskit humanml3d`` builds: the published procedure, quirks included, or exactly 20 fps by time with each file's
own gender."""
Release = Literal["smplh", "smplx"]
"""An AMASS release: SMPL+H (``*_poses.npz``) or SMPL-X (``*_stageii.npz``)."""
LengthMode = Literal["real", "short"]
"""Synthetic sequence lengths: the release's distribution, or 30-180 frames (fast)."""
HashKind = Literal["crc", "md5"]
"""A catalog's file identity: the zip directory's CRC (fast) or the MD5 of every byte."""
Decompressor = Literal["auto", "python", "lbzip2", "pbzip2"]
"""The bzip2 decompressor of ``unpack``; ``auto``: lbzip2 or pbzip2 when installed, else Python's."""


def values(choice: object) -> tuple[str, ...]:
    """The names a choice type allows, in its order: ``values(Metric) == ("posendf", "geodesic")``."""
    names = get_args(choice)
    if not names or not all(isinstance(n, str) for n in names):
        raise TypeError(f"not a choice type: {choice!r}")
    return names
