"""Pose sets from a catalog and training data from a pose set: provenance, exactness, resumption, determinism."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from amasskit.errors import ConfigError, OutputExistsError, StoreError
from amasskit.io import read
from amasskit.prior import (
    PoseSet,
    PoseSetConfig,
    TrainingData,
    TrainingDataConfig,
    build_pose_sets,
    build_training_data,
    knn_brute_force,
    pose_set_from_store,
)
from amasskit.prior.poses import _training as _data
from amasskit.rotations import convert, quat_canonical
from tests.cluster import local_cluster


@pytest.fixture(scope="module")
def pose_sets(catalogued: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("posesets")
    return build_pose_sets(PoseSetConfig(catalog=str(catalogued), out=str(out), scheme="amass-paper-all",
                                         workers=1, seed=2))  # fmt: skip


def test_pose_sets_sample_the_middle_and_keep_provenance(
    pose_sets: dict[str, Path], catalogued: Path
) -> None:
    assert set(pose_sets) == {"train", "vald", "test"}
    ps = PoseSet(pose_sets["vald"])
    assert ps.joints == "body" and ps.quat.shape[1:] == (21, 4) and ps.quat.dtype == np.float32
    assert np.all(ps.quat[..., 3] >= 0) and np.allclose(np.linalg.norm(ps.quat, axis=-1), 1, atol=1e-6)
    for i in range(len(ps.store)):
        source = ps.store.sequences[i]["source"]
        seq = read(catalogued / source)
        a, n = int(ps.store.offset[i]), int(ps.store.length[i])
        frames = np.asarray(ps.frame[a : a + n])
        T = seq.num_frames
        # 30% of the frames of the middle 80%, each pose the file's own frame
        assert n == max(1, int(np.floor((T - 2 * round(T * 0.1)) * 0.3)))
        assert frames.min() >= round(T * 0.1) and frames.max() < T - round(T * 0.1)
        want = quat_canonical(convert(seq.pose_body[frames], source="rotvec", target="quat"))
        assert np.allclose(ps.quat[a : a + n], want, atol=1e-6)
        assert ps.provenance(a) == (source, int(frames[0]))


def test_dedup_drops_poses_with_an_earlier_neighbour(pose_sets: dict[str, Path], tmp_path: Path) -> None:
    store = Path(pose_sets["train"]).parent / ".prepared" / "train"
    whole = PoseSet(pose_set_from_store(store, tmp_path / "whole"))
    thinned = PoseSet(pose_set_from_store(store, tmp_path / "thin", dedup=0.05))
    removed = thinned.store.manifest["pose_set"]["dedup"]["removed"]
    assert removed > 0 and len(thinned) == len(whole) - removed
    kept = np.asarray(thinned.quat)
    d, _ = knn_brute_force(kept, kept, 2, metric="geodesic")
    assert np.all(d[:, 1] >= 0.05)  # no two kept poses that close
    with pytest.raises(StoreError, match="not a pose set"):
        PoseSet(store)


def test_an_unchanged_rerun_keeps_the_pose_sets_from_any_directory(
    pose_sets: dict[str, Path], catalogued: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`prior poses` run again with the same settings (relative paths, from another directory) keeps the finished
    sets, as `prepare` keeps a finished store, instead of refusing them as another experiment."""
    from typer.testing import CliRunner

    from amasskit.cli import app

    out = pose_sets["train"].parent
    manifests = {s: (p / "manifest.json").read_bytes() for s, p in pose_sets.items()}
    monkeypatch.chdir(out.parent)
    again = build_pose_sets(PoseSetConfig(catalog=os.path.relpath(catalogued), out=f"./{out.name}",
                                          scheme="amass-paper-all", workers=1, seed=2))  # fmt: skip
    assert again == pose_sets
    monkeypatch.chdir(catalogued)
    result = CliRunner().invoke(app, ["-q", "prior", "poses", "--catalog", ".", "-o", str(out), "--scheme",
                                      "amass-paper-all", "-j", "1", "--seed", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {s: (p / "manifest.json").read_bytes() for s, p in pose_sets.items()} == manifests
    other = CliRunner().invoke(app, ["-q", "prior", "poses", "--catalog", ".", "-o", str(out), "--scheme",
                                     "amass-paper-all", "-j", "1", "--seed", "3"])  # fmt: skip
    text = " ".join(other.output.split())
    assert other.exit_code == 1 and "another experiment" in text and "pass overwrite (--overwrite)" in text


def test_training_data_from_the_folder_of_pose_sets(pose_sets: dict[str, Path], tmp_path: Path) -> None:
    """`prior data POSES` given the folder `prior poses -o POSES` wrote: its only set, or an error naming its sets."""
    out = pose_sets["train"].parent
    with pytest.raises(StoreError, match="3 pose sets \\(test, train, vald\\): give one"):
        build_training_data(_config(out, tmp_path / "x"))
    single = tmp_path / "single"
    single.mkdir()
    shutil.copytree(pose_sets["vald"], single / "all")
    made = TrainingData(build_training_data(_config(single, tmp_path / "data", samples_per_pose=1, k=1)))
    assert made.manifest["poses"]["path"] == str(single / "all")
    with pytest.raises(StoreError, match="holds none"):
        build_training_data(_config(tmp_path, tmp_path / "y"))


def test_a_pose_set_rewritten_in_place_is_searched_anew(tmp_path: Path) -> None:
    """The per-process index cache knows a pose set rewritten at the same path (it once returned the old set's
    neighbours under a manifest naming the new one)."""
    from amasskit.prior import write_pose_set
    from amasskit.synth import synth_pose_set

    first, _ = synth_pose_set(300, seed=1)
    second, _ = synth_pose_set(300, seed=2)
    write_pose_set(first, tmp_path / "clean")
    build_training_data(_config(tmp_path / "clean", tmp_path / "a", metric="geodesic"))
    write_pose_set(second, tmp_path / "clean", overwrite=True)
    data = TrainingData(build_training_data(_config(tmp_path / "clean", tmp_path / "b", metric="geodesic")))
    clean = np.asarray(PoseSet(tmp_path / "clean").quat)
    want_d, want_i = knn_brute_force(clean, data.arrays["noisy"], 4, metric="geodesic")
    assert np.array_equal(data.arrays["neighbour"], want_i) and np.array_equal(
        data.arrays["distance"], want_d
    )


@pytest.fixture(scope="module")
def clean_set(pose_sets: dict[str, Path]) -> Path:
    return pose_sets["train"]


def _config(poses: Path, out: Path, **changes: object) -> TrainingDataConfig:
    base: dict[str, object] = dict(poses=str(poses), out=str(out), samples_per_pose=3, noise="mixture",
                                   metric="posendf", k=4, seed=5, chunk=97)  # fmt: skip
    base.update(changes)
    return TrainingDataConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("metric", ["posendf", "geodesic"])
def test_training_data_is_exact(clean_set: Path, tmp_path: Path, metric: str) -> None:
    out = build_training_data(_config(clean_set, tmp_path / "data", metric=metric))
    data = TrainingData(out)
    clean = np.asarray(PoseSet(clean_set).quat)
    a = data.arrays
    assert len(data) == 3 * len(clean) and a["noisy"].shape == (3 * len(clean), 21, 4)
    assert np.array_equal(a["source"], np.repeat(np.arange(len(clean)), 3))
    rows = np.random.default_rng(0).choice(len(data), 150, replace=False)
    want_d, want_i = knn_brute_force(clean, a["noisy"][rows], 4, metric=metric)
    assert np.array_equal(a["neighbour"][rows], want_i) and np.array_equal(a["distance"][rows], want_d)
    assert data.manifest["metric"]["name"] == metric and data.manifest["poses"]["count"] == len(clean)
    assert not (tmp_path / ".data.partial").exists()  # the staging folder became the output


def test_the_same_bytes_by_every_route_and_after_a_kill(
    clean_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = build_training_data(_config(clean_set, tmp_path / "a", chunk=10_000))
    # a run killed after two chunks, resumed with the same chunks
    calls = {"n": 0}
    real = _data.run_chunk

    def dying(*args: object) -> int:
        if calls["n"] == 2:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_data, "run_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        build_training_data(_config(clean_set, tmp_path / "b"))
    assert (tmp_path / ".b.partial" / "done").is_dir() and len(
        os.listdir(tmp_path / ".b.partial" / "done")
    ) == 2
    monkeypatch.setattr(_data, "run_chunk", real)
    done: list[int] = []
    resumed = build_training_data(_config(clean_set, tmp_path / "b"), progress=lambda d, t: done.append(d))
    assert done[0] == 2 * 97 and done[-1] == len(PoseSet(clean_set))
    for name in ("noisy", "source", "scheme", "sigma", "distance", "neighbour"):
        assert (whole / f"{name}.npy").read_bytes() == (resumed / f"{name}.npy").read_bytes()
    assert (
        json.loads((whole / "manifest.json").read_text())["experiment_id"]
        == json.loads((resumed / "manifest.json").read_text())["experiment_id"]
    )
    # a finished output is left as it is; another config's is not replaced unless asked
    assert build_training_data(_config(clean_set, tmp_path / "b")) == resumed
    with pytest.raises(OutputExistsError, match="another training set"):
        build_training_data(_config(clean_set, tmp_path / "b", seed=6))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not an amasskit training set"):
        build_training_data(_config(clean_set, tmp_path / "foreign"))
    shutil.rmtree(tmp_path / "foreign")


def test_bad_configs_are_named(clean_set: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="samples_per_pose"):
        _config(clean_set, tmp_path / "x", samples_per_pose=0)
    with pytest.raises(ConfigError, match="noise must be"):
        _config(clean_set, tmp_path / "x", noise="gauss")
    with pytest.raises(ConfigError, match="metric must be"):
        _config(clean_set, tmp_path / "x", metric="l2")
    with pytest.raises(ConfigError, match="k = "):
        build_training_data(_config(clean_set, tmp_path / "x", k=10**9))
    with pytest.raises(StoreError):
        build_training_data(_config(tmp_path, tmp_path / "x"))
    with pytest.raises(ConfigError, match="joints"):
        PoseSetConfig(catalog="c", out="o", joints="hands")
    with pytest.raises(ConfigError, match="unknown config keys"):
        PoseSetConfig.from_mapping({"catalog": "c", "out": "o", "fraction": 0.3})


def test_the_commands(catalogued: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from amasskit.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["prior", "poses", "--catalog", str(catalogued), "-o", str(tmp_path / "sets"),
                                 "--scheme", "amass-paper-all", "--split", "vald", "--fraction", "0.5", "-j", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    ps = PoseSet(tmp_path / "sets" / "vald")
    assert ps.store.manifest["config"]["frame_fraction"] == 0.5
    result = runner.invoke(app, ["prior", "data", str(tmp_path / "sets" / "vald"), "-o", str(tmp_path / "data"),
                                 "--samples-per-pose", "2", "--noise", "posendf", "--sigma", "0.1",
                                 "--distance", "posendf", "--k", "3"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = TrainingData(tmp_path / "data")
    assert len(data) == 2 * len(ps) and data.arrays["distance"].shape == (len(data), 3)
    assert set(np.unique(data.arrays["sigma"])) == {np.float32(0.1)}
    bad = runner.invoke(app, ["prior", "poses", "--catalog", str(catalogued), "-o", str(tmp_path / "x"),
                              "--dedup", "-1"])  # fmt: skip
    assert bad.exit_code == 1 and "dedup must be" in bad.output
    missing = runner.invoke(app, ["prior", "data", str(tmp_path / "nothing"), "-o", str(tmp_path / "y")])
    assert missing.exit_code == 1 and "StoreError" in missing.output


def test_a_dask_cluster_writes_the_same_bytes(clean_set: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed (amasskit[dask])")
    local = build_training_data(_config(clean_set, tmp_path / "local", metric="geodesic"))
    with local_cluster() as cluster:
        remote = build_training_data(_config(clean_set, tmp_path / "dask", metric="geodesic",
                                             dask=cluster.scheduler_address))  # fmt: skip
    for name in ("noisy", "source", "scheme", "sigma", "distance", "neighbour", "manifest.json"):
        file = name if name.endswith(".json") else f"{name}.npy"
        assert (local / file).read_bytes() == (remote / file).read_bytes(), name


def test_a_subset_gives_the_full_jobs_rows(clean_set: Path, tmp_path: Path) -> None:
    full = TrainingData(build_training_data(_config(clean_set, tmp_path / "full")))
    part = TrainingData(build_training_data(_config(clean_set, tmp_path / "part", max_poses=25, chunk=7)))
    picked = np.unique(part.arrays["source"])
    assert len(picked) == 25 and len(part) == 25 * 3 and part.manifest["sources"] == 25
    rows = (picked[:, None] * 3 + np.arange(3)).reshape(-1)
    for name in ("noisy", "source", "scheme", "sigma", "distance", "neighbour"):
        assert np.array_equal(part.arrays[name], full.arrays[name][rows]), name


def test_a_damaged_training_set_is_named(clean_set: Path, tmp_path: Path) -> None:
    out = build_training_data(_config(clean_set, tmp_path / "data", max_poses=10))
    noisy = out / "noisy.npy"
    noisy.write_bytes(noisy.read_bytes()[:200])  # truncated
    with pytest.raises(StoreError, match=r"noisy\.npy"):
        TrainingData(out)
    (out / "distance.npy").write_bytes(b"not an array")
    with pytest.raises(StoreError):
        TrainingData(out)


def test_a_training_set_the_disk_cannot_hold_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    """`--samples-per-pose 1e9` once made a 336 GB (sparse) file before it failed: the size is checked first."""
    from amasskit.prior import write_pose_set
    from amasskit.synth import synth_pose_set

    poses, _ = synth_pose_set(50, seed=1)
    write_pose_set(poses, tmp_path / "clean")
    with pytest.raises(ConfigError, match=r"needs .* GB .* free at"):
        build_training_data(_config(tmp_path / "clean", tmp_path / "data", samples_per_pose=10**12))
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".data.lock")) == ["clean"]
