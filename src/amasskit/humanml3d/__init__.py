"""HumanML3D from AMASS: the published dataset's joints, 263-d features, mirror and splits, rebuilt exactly.

HumanML3D (Guo et al., CVPR 2022; EricGuo5513/HumanML3D, MIT) is the dataset text-to-motion models train on. Its
features, as public functions that apply to joints from anywhere::

    vecs = features(joints)            # (T, 22, 3) Y-up positions -> (T - 1, 263) float32
    back = recover_joints(vecs)        # -> (T - 1, 22, 3): the published new_joints of those features
    mirrored = mirror_joints(joints)   # left and right exchanged (x negated): HumanML3D's M<id> motions

The whole dataset from a catalogued AMASS (SMPL+H) and the body models, as ``amasskit humanml3d`` builds it::

    report = build_humanml3d("amass/", "body_models/", "HumanML3D/")   # mode="exact" (published) or "fixed"

:func:`build_humanml3d` (HumanML3D's folder layout, resumable, parallel), :func:`check_index` (every index row
mapped to its file and frames, or why not, before any work), :func:`read_index`, :func:`plan_rows`,
:func:`crop_frames`, :func:`mean_std`, :func:`write_stores` (the result as amasskit stores, for the loaders). The skeleton (:mod:`._skeleton`: joint order, chains, rest directions, inverse and forward kinematics), the features
(:func:`features`, :func:`recover_joints`, :func:`uniform_skeleton`, :data:`FEATURE_SLICES`), and the shipped
published data (:func:`target_lengths`, :func:`published_split`, :func:`published_mean_std`).
"""

from ._build import MANIFEST_NAME, HumanML3DReport, build_humanml3d, check_index, mean_std, write_stores
from ._data import PUBLISHED_SPLITS, published_mean_std, published_split, target_lengths
from ._features import (
    FEATURE_SIZE,
    FEATURE_SLICES,
    FOOT_THRESHOLD,
    features,
    recover_joints,
    uniform_skeleton,
)
from ._index import (
    MODES,
    SKIP_REASONS,
    START_TRIMS,
    IndexRow,
    PlannedRow,
    crop_frames,
    plan_rows,
    read_index,
)
from ._mirror import mirror_joints
from ._skeleton import KINEMATIC_CHAINS, PARENTS, RAW_OFFSETS

__all__ = [
    "FEATURE_SIZE",
    "FEATURE_SLICES",
    "FOOT_THRESHOLD",
    "KINEMATIC_CHAINS",
    "MANIFEST_NAME",
    "MODES",
    "PARENTS",
    "PUBLISHED_SPLITS",
    "RAW_OFFSETS",
    "SKIP_REASONS",
    "START_TRIMS",
    "HumanML3DReport",
    "IndexRow",
    "PlannedRow",
    "build_humanml3d",
    "check_index",
    "crop_frames",
    "features",
    "mean_std",
    "mirror_joints",
    "plan_rows",
    "published_mean_std",
    "published_split",
    "read_index",
    "recover_joints",
    "target_lengths",
    "uniform_skeleton",
    "write_stores",
]
