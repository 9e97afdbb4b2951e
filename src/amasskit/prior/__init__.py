"""Pose priors: training data for distance fields to the manifold of plausible poses (Pose-NDF, NRDF).

* :func:`pose_distance`, :data:`METRICS` - the pose metrics (``posendf``: ``sum_j 1 - |<q_j, x_j>|``; ``geodesic``:
  ``sum_j acos |<q_j, x_j>|``, half-angles in radians), over per-joint XYZW quaternions of either sign.
* :func:`perturb`, :class:`NoiseConfig` - noisy copies of clean poses (Pose-NDF's scheme fixed, NRDF's tangent-space
  scheme, Haar-random rotations, a mixture), seeded per (seed, pose, sample).
* :class:`PoseIndex`, :func:`knn` - the exact ``k`` nearest clean poses of each query (equal to brute force; what is
  skipped is skipped on a proven bound), :func:`knn_brute_force` the plain reference.
* :func:`build_pose_sets` / :func:`pose_set_from_store`, :class:`PoseSet` - clean pose sets from a catalog (VPoser's
  and Pose-NDF's sampling as presets), stores of kind ``pose-set`` with every pose's provenance (``amasskit prior
  poses``).
* :func:`denoise_motion`, :func:`fit_joints`, :func:`fit_keypoints`, :class:`Kinematics` - fitting bodies with a
  prior: motion denoising, inverse kinematics with missing joints, 2D keypoints (``amasskit prior denoise|fit``).
* :func:`evaluate_prior` and the metrics (:func:`apd`, :func:`nearest_pose_distance`, :func:`frechet_distance`,
  :func:`precision_recall`) - the published protocol for any prior or none (``amasskit prior evaluate``).
* :func:`build_training_data`, :class:`TrainingData` - noisy samples of a pose set with their exact nearest clean
  poses, chunked, resumable, on a device or a Dask cluster, the same bytes by every route (``amasskit prior data``).
"""

from ._data import TrainingData, TrainingDataConfig, build_training_data
from ._evaluate import (
    COMPLETION_HIDDEN,
    EvaluationConfig,
    apd,
    evaluate_prior,
    frechet_distance,
    held_out_motion,
    nearest_pose_distance,
    pose_features,
    precision_recall,
    report_table,
)
from ._fit import (
    BODY25_TO_SMPL,
    DENOISE_PRESETS,
    KEYPOINT_STEPS,
    BodyFit,
    DenoiseSchedule,
    Kinematics,
    denoise_motion,
    fit_joints,
    fit_keypoints,
    intrinsics_matrix,
    keypoint_stages,
    keypoints_from_joints,
    prior_distance,
    read_openpose,
    write_openpose,
)
from ._knn import PoseIndex, knn, knn_brute_force
from ._metrics import METRICS, Metric, pose_distance
from ._model import (
    ACTIVATIONS,
    PARENT_MAPS,
    DistanceField,
    DistanceFieldConfig,
    ExactField,
    ManifoldField,
    canonical_quat,
)
from ._noise import NOISE_SCHEMES, NoiseConfig, perturb
from ._official import load_official, read_official_config
from ._project import PROJECTION_METHODS, Projection, project, random_poses
from ._scores import auroc, spearman
from ._sets import (
    JOINT_SETS,
    PRESETS,
    PoseSet,
    PoseSetConfig,
    build_pose_sets,
    pose_set_from_store,
    write_pose_set,
)
from ._train import TRAIN_PRESETS, TrainConfig, evaluate_field, load_model, train
from ._uses import (
    interpolate_poses,
    load_prior,
    read_motion,
    read_pose,
    sample_poses,
    save_motion,
    save_poses,
)

__all__ = [
    "ACTIVATIONS",
    "BODY25_TO_SMPL",
    "COMPLETION_HIDDEN",
    "DENOISE_PRESETS",
    "JOINT_SETS",
    "KEYPOINT_STEPS",
    "METRICS",
    "NOISE_SCHEMES",
    "PARENT_MAPS",
    "PRESETS",
    "PROJECTION_METHODS",
    "TRAIN_PRESETS",
    "BodyFit",
    "DenoiseSchedule",
    "DistanceField",
    "DistanceFieldConfig",
    "EvaluationConfig",
    "ExactField",
    "Kinematics",
    "ManifoldField",
    "Metric",
    "NoiseConfig",
    "PoseIndex",
    "PoseSet",
    "PoseSetConfig",
    "Projection",
    "TrainConfig",
    "TrainingData",
    "TrainingDataConfig",
    "apd",
    "auroc",
    "build_pose_sets",
    "build_training_data",
    "canonical_quat",
    "denoise_motion",
    "evaluate_field",
    "evaluate_prior",
    "fit_joints",
    "fit_keypoints",
    "frechet_distance",
    "held_out_motion",
    "interpolate_poses",
    "intrinsics_matrix",
    "keypoint_stages",
    "keypoints_from_joints",
    "knn",
    "knn_brute_force",
    "load_model",
    "load_official",
    "load_prior",
    "nearest_pose_distance",
    "perturb",
    "pose_distance",
    "pose_features",
    "pose_set_from_store",
    "precision_recall",
    "prior_distance",
    "project",
    "random_poses",
    "read_motion",
    "read_official_config",
    "read_openpose",
    "read_pose",
    "report_table",
    "sample_poses",
    "save_motion",
    "save_poses",
    "spearman",
    "train",
    "write_openpose",
    "write_pose_set",
]
