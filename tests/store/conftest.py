"""Fixtures for the store and prepare tests: a catalogued copy of the small synthetic SMPL+H tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from amasskit.catalog import Catalog, scan
from amasskit.synth import SynthSummary


@pytest.fixture
def catalogued(smplh_tree: SynthSummary, tmp_path: Path) -> Path:
    """A scanned copy of the synthetic tree with the ``amass-paper-all`` split recorded (the test may change it)."""
    root = tmp_path / "tree"
    shutil.copytree(smplh_tree.root, root, ignore=shutil.ignore_patterns("archives"))
    scan(root, workers=1)
    with Catalog.open(root) as cat:
        cat.assign_split("amass-paper-all")
    return root
