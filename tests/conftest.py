"""Shared fixtures: the real AMASS samples (read from ../shared, never copied) and small synthetic trees."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

# before torch is imported anywhere: OpenMP threads wait for work asleep, not spinning, so parallel test workers
# (pytest-xdist, as ./scripts/test runs them) do not take each other's cores
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if "PYTEST_XDIST_WORKER" in os.environ:  # one worker per core: each computes on one thread
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from amasskit.synth import SynthSummary, synth_tree, write_body_models

REPO = Path(__file__).resolve().parents[1]
#: the real AMASS samples: ../shared beside the checkout, or wherever AMASSKIT_SAMPLES points
SAMPLES = Path(os.environ.get("AMASSKIT_SAMPLES") or REPO.parent / "shared" / "data" / "amass_sample")


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of real AMASS samples; tests using it skip where it is absent (the licence forbids shipping them)."""
    if not (SAMPLES / "amass_sample.npz").is_file():
        pytest.skip(
            f"real AMASS samples not found at {SAMPLES} (licensed data, kept outside the repository; "
            "set AMASSKIT_SAMPLES to their folder)"
        )
    return SAMPLES


@pytest.fixture(scope="session")
def smplh_tree(tmp_path_factory: pytest.TempPathFactory) -> SynthSummary:
    """A small SMPL+H synthetic tree, one file per sub-dataset, short sequences, with archives."""
    return synth_tree(
        tmp_path_factory.mktemp("synth") / "smplh", files=19, lengths="short", archives=True, seed=7
    )


@pytest.fixture(scope="session")
def smplx_tree(tmp_path_factory: pytest.TempPathFactory) -> SynthSummary:
    """A small SMPL-X synthetic tree."""
    return synth_tree(
        tmp_path_factory.mktemp("synth") / "smplx", files=12, release="smplx", lengths="short", seed=3
    )


def shared_folder(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]
) -> Path:
    """A read-only folder that ``build(folder)`` fills once for the whole run: under parallel workers (pytest-xdist)
    the first worker builds it while the others wait on a lock, then all read it; in one process, built as usual."""
    base = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        base = base.parent  # the run's folder, above each worker's own
    folder, done = base / name, base / f"{name}.done"
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            if folder.exists():  # a build that did not finish
                shutil.rmtree(folder)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic SMPL+H (with hand-PCA keys, which smplx needs), DMPL and SMPL-X files for all genders (read only;
    written once for the run, about 8 s)."""
    return shared_folder(tmp_path_factory, "models", lambda root: write_body_models(root, hand_pca=True))
