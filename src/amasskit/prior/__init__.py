"""Pose priors: distance fields to the manifold of plausible poses (Pose-NDF, NRDF), their training data, and what
they are used for.

The three lines most users need::

    field = load_prior("run/model.pt")                    # an amasskit model or a released checkpoint
    result = sample_poses(field, 16)                      # a task (result.quat: (16, 21, 4)); also interpolate,
                                                          # denoise, fit to joints or keypoints, evaluate
    distances, ids = PoseIndex(clean, metric="geodesic").search(queries, 5)   # exact nearest clean poses

Three parts, by what a user does:

* :mod:`amasskit.prior.poses` - pose data: pose sets from a catalog (:func:`build_pose_sets`, :class:`PoseSet`), the
  metric (:func:`pose_distance`), noise (:func:`perturb`), the exact search (:class:`PoseIndex`), training sets
  (:func:`build_training_data`, :class:`TrainingData`).
* :mod:`amasskit.prior.field` - the field: the network (:class:`DistanceField`), released checkpoints
  (:func:`load_official`), training (:func:`train`), loading any of them (:func:`load_prior`), projection onto the
  zero set (:func:`project`), reference fields (:class:`ExactField`, :class:`ManifoldField`).
* :mod:`amasskit.prior.tasks` - the uses, one module each: :func:`sample_poses` and :func:`interpolate_poses`,
  :func:`denoise_motion`, :func:`fit_joints`, :func:`fit_keypoints`, :func:`evaluate_prior`.

Every name is also importable from ``amasskit.prior`` itself. The motion and OpenPose files the tasks read and write
live in :mod:`amasskit.io` (:func:`~amasskit.io.read_pose`, :func:`~amasskit.io.save_motion`, ...), and are
re-exported here for existing imports.
"""

from ..io import read_motion, read_openpose, read_pose, save_motion, save_poses, write_openpose
from .field import (
    ACTIVATIONS,
    PARENT_MAPS,
    PROJECTION_METHODS,
    TRAIN_PRESETS,
    DistanceField,
    DistanceFieldConfig,
    ExactField,
    ManifoldField,
    Projection,
    TrainConfig,
    auroc,
    canonical_quat,
    evaluate_field,
    load_model,
    load_official,
    load_prior,
    project,
    random_poses,
    read_official_config,
    spearman,
    train,
)
from .poses import (
    JOINT_SETS,
    METRICS,
    NOISE_SCHEMES,
    PRESETS,
    Metric,
    NoiseConfig,
    PoseIndex,
    PoseSet,
    PoseSetConfig,
    TrainingData,
    TrainingDataConfig,
    build_pose_sets,
    build_training_data,
    knn,
    knn_brute_force,
    perturb,
    pose_distance,
    pose_set_from_store,
    write_pose_set,
)
from .tasks import (
    BODY25_TO_SMPL,
    COMPLETION_HIDDEN,
    DENOISE_PRESETS,
    KEYPOINT_STEPS,
    BodyFit,
    DenoiseSchedule,
    EvaluationConfig,
    Kinematics,
    apd,
    denoise_motion,
    evaluate_prior,
    fit_joints,
    fit_keypoints,
    frechet_distance,
    held_out_motion,
    interpolate_poses,
    intrinsics_matrix,
    keypoint_stages,
    keypoints_from_joints,
    nearest_pose_distance,
    pose_features,
    precision_recall,
    prior_distance,
    report_table,
    sample_poses,
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
