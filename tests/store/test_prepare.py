"""prepare: from the catalog to one store per split; deterministic across workers, resumable, problems reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from amasskit.catalog import Catalog
from amasskit.errors import AmassKitError
from amasskit.prepare import PrepareConfig, _run, prepare
from amasskit.store import Store
from tests.cluster import local_cluster
from tests.store.helpers import config, digest


def test_prepare_makes_one_store_per_split(catalogued: Path, tmp_path: Path) -> None:
    report = prepare(config(catalogued, tmp_path / "out"))
    assert set(report.stores) == {"train", "vald", "test"} and report.problems == []
    store = Store(report.stores["train"])
    with Catalog.open(catalogued) as cat:
        inputs = cat.split_counts("amass-paper-all")["train"]
    assert len(store) == 4 * inputs  # original, rotated, mirrored, rotated+mirrored
    assert {m["augmentation"].split(":")[0] for m in store.sequences} >= {"none", "rotate", "mirror"}
    assert np.all(store.fps == 30.0)
    assert store.fields["pose_body"].shape[1:] == (21, 3) and store.fields["pose_body"].dtype == np.float32
    assert (
        store.manifest["experiment_id"] == report.experiment_id
        and "timings:" in (report.stores["train"] / "prepare.log").read_text()
    )
    # nothing of the run is left but its lock file (never deleted: see amasskit._util.locking)
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == [
        ".amasskit-prepare.lock"
    ]


def test_deterministic_whatever_the_workers(catalogued: Path, tmp_path: Path) -> None:
    one = prepare(config(catalogued, tmp_path / "one", workers=1))
    two = prepare(config(catalogued, tmp_path / "two", workers=2))
    assert one.experiment_id == two.experiment_id
    for split in one.stores:
        assert digest(one.stores[split]) == digest(two.stores[split])


def test_killed_run_resumes_to_the_same_bytes(
    catalogued: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = prepare(config(catalogued, tmp_path / "ref"))
    original = _run.work_one
    calls = {"n": 0}

    def dies(*args: object) -> object:
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_run, "work_one", dies)
    with pytest.raises(KeyboardInterrupt):
        prepare(config(catalogued, tmp_path / "run"))
    assert not (tmp_path / "run" / "train").exists()  # no half store
    monkeypatch.setattr(_run, "work_one", original)
    counted = {"n": 0}

    def counting(*args: object) -> object:
        counted["n"] += 1
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_run, "work_one", counting)
    resumed = prepare(config(catalogued, tmp_path / "run"))
    assert counted["n"] == sum(reference.sequences.values()) // 4 - 5  # only the files not done before
    for split in reference.stores:
        assert digest(reference.stores[split]) == digest(resumed.stores[split])


def test_problem_files_are_skipped_or_stop_the_run(catalogued: Path, tmp_path: Path) -> None:
    victim = sorted(catalogued.glob("CMU/*/*_poses.npz"))[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # damaged after cataloguing
    report = prepare(config(catalogued, tmp_path / "out"))
    assert [p for p, _ in report.problems] == [victim.relative_to(catalogued).as_posix()]
    manifest = Store(report.stores["train"]).manifest
    assert manifest["problems"][0]["error"].startswith("CorruptFileError")
    with pytest.raises(AmassKitError, match="strict"):
        prepare(config(catalogued, tmp_path / "strict", strict=True))


@pytest.mark.parametrize(("rotation", "tail"), [("quat", (21, 4)), ("rotmat", (21, 3, 3)), ("6d", (21, 6))])
def test_rotation_representations(
    catalogued: Path, tmp_path: Path, rotation: str, tail: tuple[int, ...]
) -> None:
    report = prepare(config(catalogued, tmp_path / rotation, rotation=rotation, rotations=0, mirror=False, noise=0.0,
                            splits=("test",)))  # fmt: skip
    body = np.asarray(Store(report.stores["test"]).fields["pose_body"])
    assert body.shape[1:] == tail
    if rotation == "quat":
        assert np.allclose(np.linalg.norm(body, axis=-1), 1.0, atol=1e-5)
    if rotation == "rotmat":
        assert np.allclose(np.linalg.det(body), 1.0, atol=1e-4)


def test_frame_sampling_mode(catalogued: Path, tmp_path: Path) -> None:
    whole = prepare(
        config(catalogued, tmp_path / "whole", rotations=0, mirror=False, noise=0.0, splits=("vald",))
    )
    some = prepare(config(catalogued, tmp_path / "some", rotations=0, mirror=False, noise=0.0, splits=("vald",),
                          frame_fraction=0.25))  # fmt: skip
    full, sampled = Store(whole.stores["vald"]), Store(some.stores["vald"])
    assert len(full) == len(sampled)
    assert all(s == max(1, f // 4) for f, s in zip(full.length, sampled.length, strict=True))
    # each kept frame's index in its (resampled) file: the same rows as the whole store's at those frames
    assert "frame" in sampled.fields and "frame" not in full.fields
    frame = np.asarray(sampled.fields["frame"])
    assert frame.dtype == np.int32
    body_full, body_some = np.asarray(full.fields["pose_body"]), np.asarray(sampled.fields["pose_body"])
    for i in range(len(sampled)):
        a, n = int(sampled.offset[i]), int(sampled.length[i])
        f = frame[a : a + n]
        assert np.all(np.diff(f) > 0)
        whole = body_full[int(full.offset[i]) : int(full.offset[i] + full.length[i])]
        first = int(f[0]) - int(
            np.flatnonzero((whole == body_some[a]).all(axis=(1, 2)))[0]
        )  # the trimmed start
        assert first >= 0 and np.array_equal(whole[f - first], body_some[a : a + n])


def test_body_model_gives_joints_and_the_real_pelvis_offset(
    catalogued: Path, tmp_path: Path, model_dir: Path
) -> None:
    import torch

    from amasskit.body import BodyModel

    report = prepare(config(catalogued, tmp_path / "out", splits=("vald",), canonicalise=True, noise=0.0,
                            body_models=str(model_dir)))  # fmt: skip
    store = Store(report.stores["vald"])
    joints = store.fields["joints"]
    assert joints.shape[1:] == (52, 3) and joints.dtype == np.float32
    assert store.manifest["pelvis_offset"].startswith("the body model's rest pelvis")
    flip = np.array([-1.0, 1.0, 1.0])
    originals = {m["source"]: i for i, m in enumerate(store.sequences) if m["augmentation"] == "none"}
    assert originals
    for i, meta in enumerate(store.sequences):
        seq = store[i]
        # the stored joints are the model's joints for the stored parameters (an independent forward pass)
        model = BodyModel.load("smplh", store.gender_of(i), model_dir=model_dir, dtype=torch.float64)
        with torch.inference_mode():
            posed = model.with_shape(store.betas[i], dmpls=np.asarray(seq["dmpls"], np.float64)).with_pose(
                root_orient=np.asarray(seq["root_orient"], np.float64),
                pose_body=np.asarray(seq["pose_body"], np.float64),
                pose_hand=np.asarray(seq["pose_hand"], np.float64),
                trans=np.asarray(seq["trans"], np.float64),
            )
            assert np.allclose(posed.joints.numpy(), seq["joints"], atol=2e-5)
        original = store[originals[meta["source"]]]["joints"].astype(np.float64)
        kind = meta["augmentation"]
        if kind == "none":  # canonicalised with the real offset: the pelvis starts on the vertical axis
            assert np.allclose(seq["joints"][0, 0, :2], 0.0, atol=1e-5)
        if kind.startswith("rotate:") and "+" not in kind:  # turned about the vertical: every joint, exactly
            angle = float(kind.split(":")[1])
            c, s = np.cos(angle), np.sin(angle)
            R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            assert np.allclose(seq["joints"], original @ R.T, atol=1e-4)
        if kind == "mirror":  # reflected across x = 0: the pelvis trajectory exactly, whatever the shape
            assert np.allclose(seq["joints"][:, 0], original[:, 0] * flip, atol=1e-5)


def test_zero_pelvis_offset_is_stated_and_joints_need_a_model(catalogued: Path, tmp_path: Path) -> None:
    report = prepare(config(catalogued, tmp_path / "out", splits=("test",), canonicalise=True))
    store = Store(report.stores["test"])
    assert "joints" not in store.fields and store.manifest["pelvis_offset"].startswith("approximated as zero")
    with pytest.raises(ValueError, match="joints need a body model"):
        PrepareConfig(catalog="c", out="o", joints=True)


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="unknown config keys"):
        PrepareConfig.from_mapping({"catalog": "c", "out": "o", "fpss": 30})
    with pytest.raises(ValueError, match="rotation must be"):
        PrepareConfig(catalog="c", out="o", rotation="euler")
    assert PrepareConfig.from_mapping({"catalog": "c", "out": "o", "datasets": ["CMU"]}).datasets == ("CMU",)


def test_cli_prepare_with_a_yaml_config(catalogued: Path, tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from amasskit.cli import app

    config_file = tmp_path / "prepare.yaml"
    config_file.write_text(yaml.safe_dump({"catalog": str(catalogued), "out": str(tmp_path / "out"),
                                           "scheme": "amass-paper-all", "fps": 30, "mirror": True,
                                           "splits": ["vald", "test"]}))  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(app, ["-q", "prepare", str(config_file), "--rotation", "6d", "-j", "1"])
    assert result.exit_code == 0, result.output
    store = Store(tmp_path / "out" / "vald")
    assert store.fields["pose_body"].shape[1:] == (21, 6) and store.manifest["config"]["mirror"] is True
    assert not (tmp_path / "out" / "train").exists()
    bad = runner.invoke(app, ["prepare", str(config_file), "--rotation", "euler"])
    assert bad.exit_code != 0 and "rotation must be" in bad.output


def test_prepare_on_a_real_dask_cluster_gives_the_same_bytes(catalogued: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    local = prepare(config(catalogued, tmp_path / "local", splits=("vald", "test")))
    with local_cluster() as cluster:
        on_dask = prepare(
            config(catalogued, tmp_path / "dask", splits=("vald", "test"), dask=cluster.scheduler_address)
        )
        with distributed.Client(cluster) as client:  # the work ran in the cluster's worker processes
            assert len(client.scheduler_info()["workers"]) == 2
    assert on_dask.experiment_id == local.experiment_id
    for split in local.stores:
        assert digest(local.stores[split]) == digest(on_dask.stores[split])
