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
  zero set (:func:`project_to_manifold`), reference fields (:class:`ExactField`, :class:`ManifoldField`).
* :mod:`amasskit.prior.tasks` - the uses, one module each: :func:`sample_poses` and :func:`interpolate_poses`,
  :func:`denoise_motion`, :func:`fit_joints`, :func:`fit_keypoints`, :func:`evaluate_prior`.

The options' named values (metrics, noise schemes, presets, projection methods) are ``Literal`` types in
:mod:`amasskit.choices`, whose table says what ``"posendf"`` means for each option (*as Pose-NDF does it*: its
metric, its noise, its sampling, its training settings, its projection step, its denoising schedule).

Every name is also importable from ``amasskit.prior`` itself. The motion and OpenPose files the tasks read and
write live in :mod:`amasskit.io` (:func:`~amasskit.io.read_pose`, :func:`~amasskit.io.save_motion`, ...) and are
re-exported here. Old names kept for one release: ``PRESETS`` (now :data:`POSE_SET_PRESETS`), ``project`` and
``Projection`` (now :func:`project_to_manifold` and :class:`ManifoldProjection`, not to be confused with the camera's
:func:`camera_to_pixels`), ``knn`` (now :meth:`PoseIndex.search`; deprecated).
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
    ManifoldProjection,
    TrainConfig,
    auroc,
    canonical_quat,
    evaluate_field,
    load_model,
    load_official,
    load_prior,
    project_to_manifold,
    random_poses,
    read_official_config,
    spearman,
    train,
)
from .poses import (
    JOINT_SETS,
    METRICS,
    NOISE_SCHEMES,
    POSE_SET_PRESETS,
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
    KEYPOINT_PRIOR_WEIGHTS,
    KEYPOINT_STEPS,
    MIN_KEYPOINTS,
    BodyFit,
    DenoisedFile,
    DenoiseSchedule,
    EvaluationConfig,
    FittedFile,
    Kinematics,
    apd,
    body_kinematics,
    denoise_file,
    denoise_motion,
    evaluate_prior,
    evaluate_priors,
    fit_joints,
    fit_joints_file,
    fit_keypoint_files,
    fit_keypoints,
    fittable_keypoints,
    frame_window,
    frechet_distance,
    held_out_files,
    held_out_motion,
    interpolate_poses,
    intrinsics_matrix,
    keypoint_stages,
    keypoints_from_joints,
    load_field,
    nearest_pose_distance,
    pose_features,
    precision_recall,
    prior_distance,
    report_table,
    sample_poses,
)

#: the names before 0.2 (kept for one release)
PRESETS = POSE_SET_PRESETS
project = project_to_manifold
Projection = ManifoldProjection

__all__ = [
    "ACTIVATIONS",
    "BODY25_TO_SMPL",
    "COMPLETION_HIDDEN",
    "DENOISE_PRESETS",
    "JOINT_SETS",
    "KEYPOINT_PRIOR_WEIGHTS",
    "KEYPOINT_STEPS",
    "METRICS",
    "MIN_KEYPOINTS",
    "NOISE_SCHEMES",
    "PARENT_MAPS",
    "POSE_SET_PRESETS",
    "PRESETS",
    "PROJECTION_METHODS",
    "TRAIN_PRESETS",
    "BodyFit",
    "DenoiseSchedule",
    "DenoisedFile",
    "DistanceField",
    "DistanceFieldConfig",
    "EvaluationConfig",
    "ExactField",
    "FittedFile",
    "Kinematics",
    "ManifoldField",
    "ManifoldProjection",
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
    "body_kinematics",
    "build_pose_sets",
    "build_training_data",
    "canonical_quat",
    "denoise_file",
    "denoise_motion",
    "evaluate_field",
    "evaluate_prior",
    "evaluate_priors",
    "fit_joints",
    "fit_joints_file",
    "fit_keypoint_files",
    "fit_keypoints",
    "fittable_keypoints",
    "frame_window",
    "frechet_distance",
    "held_out_files",
    "held_out_motion",
    "interpolate_poses",
    "intrinsics_matrix",
    "keypoint_stages",
    "keypoints_from_joints",
    "knn",
    "knn_brute_force",
    "load_field",
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
    "project_to_manifold",
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
