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
