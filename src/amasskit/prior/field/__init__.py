"""The distance field: the network, the released checkpoints, training, loading, and projection onto its zero set.

* :func:`load_prior` - any field from a file: a model trained by amasskit or a released Pose-NDF/NRDF checkpoint.
* :class:`DistanceField`, :class:`DistanceFieldConfig` - Pose-NDF's and NRDF's network, its bones batched by depth
  (:data:`ACTIVATIONS`; :data:`PARENT_MAPS`, the kinematic tree or the released code's map); :func:`canonical_quat`
  the inputs it takes (unit, ``w >= 0``).
* :func:`train`, :class:`TrainConfig` (:data:`TRAIN_PRESETS`), :func:`load_model`, :func:`evaluate_field` -
  training on a training set (seeded, resumable; ``amasskit prior train``).
* :func:`load_official`, :func:`read_official_config` - the released checkpoints with their ``config.yaml``.
* :func:`project_to_manifold`, :class:`ManifoldProjection`, :func:`random_poses` - poses moved onto the field's zero set (methods:
  :data:`PROJECTION_METHODS`).
* :class:`ExactField`, :class:`ManifoldField` - reference fields of exact distances (tests, benchmarks).
* :func:`spearman`, :func:`auroc` - how well a field ranks distances and tells clean from noisy poses.
"""

from ._load import load_prior
from ._network import (
    ACTIVATIONS,
    PARENT_MAPS,
    DistanceField,
    DistanceFieldConfig,
    canonical_quat,
    field_value,
    parent_map,
)
from ._official import load_official, read_official_config
from ._projection import PROJECTION_METHODS, ManifoldProjection, project_to_manifold, random_poses
from ._reference import ExactField, ManifoldField
from ._scores import auroc, spearman
from ._train import TRAIN_PRESETS, TrainConfig, evaluate_field, load_model, train

__all__ = [
    "ACTIVATIONS",
    "PARENT_MAPS",
    "PROJECTION_METHODS",
    "TRAIN_PRESETS",
    "DistanceField",
    "DistanceFieldConfig",
    "ExactField",
    "ManifoldField",
    "ManifoldProjection",
    "TrainConfig",
    "auroc",
    "canonical_quat",
    "evaluate_field",
    "field_value",
    "load_model",
    "load_official",
    "load_prior",
    "parent_map",
    "project_to_manifold",
    "random_poses",
    "read_official_config",
    "spearman",
    "train",
]
