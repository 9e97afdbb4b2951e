"""Pose data for distance fields: pose sets, the metric, noise, the exact nearest-pose search, training sets.

* :class:`PoseSet`, :func:`build_pose_sets` (:class:`PoseSetConfig`; sampling :data:`POSE_SET_PRESETS`, :data:`JOINT_SETS`),
  :func:`pose_set_from_store`, :func:`write_pose_set` - clean poses (XYZW, ``w >= 0``) with their provenance, sampled
  from a catalog (``amasskit prior poses``).
* :func:`pose_distance`, :data:`METRICS` (the type :data:`Metric`) - the pose metrics over per-joint quaternions of
  either sign (:func:`joint_terms`: the same terms in torch, differentiable).
* :func:`perturb`, :class:`NoiseConfig`, :data:`NOISE_SCHEMES` - seeded noisy copies of clean poses.
* :class:`PoseIndex` - the exact ``k`` nearest clean poses of each query (``.search``), or all within a radius
  (``.range_search``), as faiss's indexes; :func:`knn_brute_force` the plain reference (:func:`knn`: deprecated).
* :class:`TrainingData`, :func:`build_training_data` (:class:`TrainingDataConfig`) - noisy samples with their exact nearest clean poses
  (``amasskit prior data``).
"""

from ._metric import (
    METRIC_DEFINITIONS,
    METRICS,
    Metric,
    check_metric,
    joint_terms,
    pose_distance,
    score_threshold,
)
from ._noise import NOISE_SCHEMES, NoiseConfig, perturb
from ._search import PoseIndex, knn, knn_brute_force
from ._sets import (
    JOINT_SETS,
    POSE_SET_PRESETS,
    PoseSet,
    PoseSetConfig,
    build_pose_sets,
    pose_set_from_store,
    write_pose_set,
)
from ._training import TrainingData, TrainingDataConfig, build_training_data

__all__ = [
    "JOINT_SETS",
    "METRICS",
    "METRIC_DEFINITIONS",
    "NOISE_SCHEMES",
    "POSE_SET_PRESETS",
    "Metric",
    "NoiseConfig",
    "PoseIndex",
    "PoseSet",
    "PoseSetConfig",
    "TrainingData",
    "TrainingDataConfig",
    "build_pose_sets",
    "build_training_data",
    "check_metric",
    "joint_terms",
    "knn",
    "knn_brute_force",
    "perturb",
    "pose_distance",
    "pose_set_from_store",
    "score_threshold",
    "write_pose_set",
]
