"""A catalogued synthetic tree for the pose-set tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from amasskit.catalog import Catalog, scan
from amasskit.synth import SynthSummary


@pytest.fixture(scope="module")
def catalogued(smplh_tree: SynthSummary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prior") / "tree"
    shutil.copytree(smplh_tree.root, root, ignore=shutil.ignore_patterns("archives"))
    scan(root, workers=1)
    with Catalog.open(root) as cat:
        cat.assign_split("amass-paper-all")
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small distance field trained by amasskit (30 steps) on a grid of the known pose family: for the commands
    that take a model (what it has learned is not checked here)."""
    from amasskit.prior import TrainConfig, TrainingDataConfig, build_training_data, train, write_pose_set
    from amasskit.synth import PoseManifold

    manifold = PoseManifold(dim=2, seed=0)
    root = tmp_path_factory.mktemp("tiny")
    write_pose_set(manifold.poses(manifold.grid(24)), root / "clean")
    build_training_data(TrainingDataConfig(poses=str(root / "clean"), out=str(root / "data"), samples_per_pose=2,
                                           noise="nrdf", sigmas={"nrdf": (0.5, 2.0)}, k=1))  # fmt: skip
    return train(TrainConfig(data=str(root / "data"), out=str(root / "run"), dims=(32, 16), steps=30, batch_size=64,
                             log_every=10, checkpoint_every=30))  # fmt: skip
