"""Building HumanML3D from a synthetic AMASS tree in the released layout, against the published procedure re-done
plainly (numpy's slicing, numpy's gender comparison, one body-model call per frame, the reference feature step)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from amasskit.body import BodyModel
from amasskit.catalog import scan
from amasskit.errors import OutputExistsError
from amasskit.humanml3d import (
    MANIFEST_NAME,
    IndexRow,
    build_humanml3d,
    check_index,
    crop_frames,
    mirror_joints,
    read_index,
    target_lengths,
)
from amasskit.io import write
from amasskit.sequence import Gender
from amasskit.synth import FilePlan, synth_sequence

from . import reference

ROWS = read_index()
BY_ID = {r.motion_id: r for r in ROWS}


def _rows_of(source_part: str, count: int) -> list[IndexRow]:
    """The ``count`` rows of these files with the shortest crops (the tests stay fast) among files no other row
    shares."""
    sources = Counter(r.source for r in ROWS)
    rows = [r for r in ROWS if source_part in r.source and sources[r.source] == 1 and r.end - r.start >= 30]
    return sorted(rows, key=lambda r: (r.end - r.start, r.end))[:count]


def _write_motion(path: Path, frames: int, fps: float, gender: object, seed: int) -> None:
    """An AMASS SMPL+H motion file, written plainly (156 pose numbers a frame, 16 betas, 8 DMPLs)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / fps
    poses = 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0, 156) * t + rng.uniform(0, 6, 156))
    poses[:, :3] = [math.pi / 2, 0, 0]  # standing up in AMASS's Z-up world
    poses[:, :3] += 0.1 * np.sin(t)
    trans = np.concatenate([0.5 * t, 0.2 * np.sin(t), 0.9 + 0 * t], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, poses=poses, trans=trans, betas=rng.normal(0, 1, 16), gender=gender,
             mocap_framerate=np.array(fps), dmpls=np.zeros((frames, 8)))  # fmt: skip


@pytest.fixture(scope="module")
def amass(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A tree holding the files of a few index rows: trims of three kinds, 120 / 250 / 60 fps, a bytes gender, a
    neutral gender, a crop past the end, a file too slow, a file in the BMLrub spelling; and a HumanAct12 file."""
    root = tmp_path_factory.mktemp("amass")
    chosen = {
        "kit": _rows_of("/KIT/", 2),
        "hdm": _rows_of("MPI_HDM05", 1),
        "transitions": _rows_of("Transitions_mocap", 1),
        "bml": _rows_of("BioMotionLab_NTroje", 1),
    }
    plans = {  # row id -> (fps, gender, frames beyond what the crop needs)
        chosen["kit"][0].motion_id: (100.0, "male", 5),
        chosen["kit"][1].motion_id: (
            250.0,
            np.array(b"male"),
            3,
        ),  # bytes: the published rule takes the female model
        chosen["hdm"][0].motion_id: (120.0, "female", -4),  # its crop runs past the end
        chosen["transitions"][0].motion_id: (60.0, "neutral", 2),
        chosen["bml"][0].motion_id: (120.0, "male", 1),
    }
    written = {}
    for seed, (motion_id, (fps, gender, extra)) in enumerate(plans.items()):
        row = BY_ID[motion_id]
        dataset, subject, name = row.place
        folder = "BMLrub" if dataset == "BioMotionLab_NTroje" else dataset
        stride = int(fps / 20)
        frames = (row.trim + row.end + extra) * stride
        path = root / folder / subject / f"{name}_poses.npz"
        if path.exists():
            continue
        _write_motion(path, frames, fps, gender, seed)
        written[motion_id] = path
    only_x = _rows_of("/ACCAD/", 1)[0]  # in the SMPL-X release only
    dataset, subject, name = only_x.place
    plan = FilePlan(index=0, dataset=dataset, subject=subject, name=name, relpath="", num_frames=only_x.end + 2, fps=20.0,
                    gender=Gender.MALE, gender_as_bytes=False, betas=(0.0,) * 16, with_markers=False)  # fmt: skip
    write(synth_sequence(plan, release="smplx", seed=3), root / dataset / subject / f"{name}_stageii.npz")
    slow = _rows_of("/CMU/", 1)[0]
    _, subject, name = slow.place
    _write_motion(root / "CMU" / subject / f"{name}_poses.npz", 400, 15.0, "male", 99)
    scan(root)
    acts = tmp_path_factory.mktemp("humanact12")
    act = next(r for r in ROWS if r.is_humanact12)
    np.save(
        acts / act.source.rsplit("/", 1)[-1],
        np.random.default_rng(5).normal(0, 0.3, (30, 24, 3)) + np.array([0, 1, 0]),
    )
    return {"root": root, "rows": plans, "slow": slow.motion_id, "act": act.motion_id, "acts": acts,
            "smplx": only_x.motion_id}  # fmt: skip


def _published_joints(path: Path, row: IndexRow, model_dir: Path) -> np.ndarray:
    """Steps 1 and 2 as published, one frame at a time: every int(fps / 20)-th frame, the male model only where
    gender == 'male' compares true, 10 betas, Y-up, the trim, the crop, x negated."""
    data = np.load(path)
    fps = float(data["mocap_framerate"])
    gender = "male" if bool(np.all(data["gender"] == "male")) else "female"
    model = BodyModel.load("smplh", gender, model_dir=model_dir, dmpl=False)
    shaped = model.with_shape(torch.tensor(data["betas"][:10], dtype=torch.float32))
    frames = []
    for f in range(0, len(data["trans"]), int(fps / 20)):
        pose = torch.tensor(data["poses"][f], dtype=torch.float32)
        posed = shaped.with_pose(root_orient=pose[:3], pose_body=pose[3:66], pose_hand=pose[66:],
                                 trans=torch.tensor(data["trans"][f], dtype=torch.float32))  # fmt: skip
        frames.append(posed.joints.numpy())
    joints = np.dot(np.array(frames), np.array([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]]))
    joints = joints[row.trim :][row.start : row.end]
    joints[..., 0] *= -1
    return joints


def test_index_rows_are_checked_before_any_work(amass: dict[str, object], model_dir: Path) -> None:
    planned = {p.row.motion_id: p for p in check_index(amass["root"], humanact12=amass["acts"])}  # type: ignore[arg-type]
    assert len(planned) == len(ROWS) == 14616
    for motion_id in amass["rows"]:  # type: ignore[attr-defined]
        assert planned[motion_id].skip is None, motion_id
    hdm = next(m for m in amass["rows"] if "MPI_HDM05" in BY_ID[m].source)  # type: ignore[attr-defined]
    assert planned[hdm].truncated
    assert planned[amass["slow"]].skip == "slow"  # type: ignore[index]
    assert planned[amass["smplx"]].skip == "smplx_only"  # type: ignore[index]
    assert planned[amass["act"]].skip is None  # type: ignore[index]
    other_act = next(r for r in ROWS if r.is_humanact12 and r.motion_id != amass["act"])
    assert planned[other_act.motion_id].skip == "humanact12"
    present = {BY_ID[m].source for m in [*amass["rows"], amass["slow"], amass["smplx"]]}  # type: ignore[misc]
    missing = {p.row.motion_id for p in planned.values() if p.skip == "missing"}
    assert missing == {r.motion_id for r in ROWS if not r.is_humanact12 and r.source not in present}


def test_crops_by_the_published_stride_and_by_time() -> None:
    row = IndexRow(
        "./pose_data/MPI_HDM05/bk/x_poses.npy", 5, 25, "000001"
    )  # a 3 s trim: 60 frames at the stride
    frames, cut = crop_frames(row, frames=12000, fps=250.0, mode="exact")  # type: ignore[misc]
    assert not cut and np.array_equal(frames, (60 + np.arange(5, 25)) * 12)  # 20.8 fps, as published
    frames, cut = crop_frames(row, frames=12000, fps=250.0, mode="fixed")  # type: ignore[misc]
    # the same stretch of time, [65, 85) * 12 / 250 s, at exactly 20 fps
    assert np.array_equal(frames, np.arange(round(65 * 12 / 250 * 20), round(85 * 12 / 250 * 20)))
    assert crop_frames(row, frames=(60 + 5) * 12, fps=250.0, mode="exact") == "empty"
    frames, cut = crop_frames(row, frames=(60 + 10) * 12, fps=250.0, mode="exact")  # type: ignore[misc]
    assert cut and len(frames) == 5
    assert crop_frames(row, frames=1000, fps=19.9, mode="exact") == "slow"
    assert crop_frames(IndexRow(row.source, 0, 1, "x"), frames=4000, fps=120.0, mode="exact") == "short"


def test_build_equals_the_published_procedure_and_resumes(
    amass: dict[str, object], model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "HumanML3D"
    report = build_humanml3d(amass["root"], model_dir, out, humanact12=amass["acts"], workers=1)  # type: ignore[arg-type]
    rows: dict[str, object] = amass["rows"]  # type: ignore[assignment]
    planned = check_index(amass["root"], humanact12=amass["acts"])  # type: ignore[arg-type]
    buildable = {p.row.motion_id for p in planned if p.skip is None}
    assert sorted(report.written) == sorted(buildable) and set(rows) | {amass["act"]} <= buildable
    assert report.skipped[amass["slow"]] == "slow"  # type: ignore[index]
    lengths = target_lengths()
    for motion_id in rows:  # the planted rows (other rows of the same files are built by the same code)
        row = BY_ID[motion_id]
        dataset, subject, name = row.place
        folder = "BMLrub" if dataset == "BioMotionLab_NTroje" else dataset
        joints = _published_joints(amass["root"] / folder / subject / f"{name}_poses.npz", row, model_dir)  # type: ignore[operator]
        for mid, motion in ((motion_id, joints), (f"M{motion_id}", mirror_joints(joints))):
            vecs = np.load(out / "new_joint_vecs" / f"{mid}.npy")
            plain = reference.features(motion, lengths)
            assert vecs.dtype == np.float32 and vecs.shape == plain.shape, mid
            assert np.abs(vecs[:, :259] - plain[:, :259]).max() < 1e-4, mid
            assert np.array_equal(vecs[:, 259:], plain[:, 259:]), mid
            assert (
                np.abs(
                    np.load(out / "new_joints" / f"{mid}.npy") - reference.recover(vecs.astype(float))
                ).max()
                < 1e-5
            )
    # the statistics over every motion built, and the splits less what was not built
    names = [n for m in report.written for n in (m, f"M{m}")]
    stacked = np.concatenate([np.load(out / "new_joint_vecs" / f"{n}.npy").astype(np.float64) for n in names])
    mean, std = np.load(out / "Mean.npy"), np.load(out / "Std.npy")
    assert np.allclose(mean, stacked.mean(0), atol=1e-6)
    spread = stacked.std(0)
    for lo, hi in ((0, 1), (1, 3), (3, 4), (4, 67), (67, 193), (193, 259), (259, 263)):
        assert np.allclose(std[lo:hi], spread[lo:hi].mean(), rtol=1e-5)
    listed = set((out / "all.txt").read_text().split())
    assert listed and listed <= set(names)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["published"] and manifest["skipped"][amass["slow"]] == "slow"  # type: ignore[index]
    assert report.frames == sum(len(np.load(out / "new_joint_vecs" / f"{n}.npy")) for n in names)

    # a second run keeps everything; a lost motion is built again, the same bytes
    before = {p.name: p.read_bytes() for p in (out / "new_joint_vecs").iterdir()}
    victim = next(iter(rows))
    (out / "new_joint_vecs" / f"{victim}.npy").unlink()
    again = build_humanml3d(amass["root"], model_dir, out, humanact12=amass["acts"], workers=1)  # type: ignore[arg-type]
    assert again.written == [victim] and len(again.kept) == len(report.written) - 1
    assert {p.name: p.read_bytes() for p in (out / "new_joint_vecs").iterdir()} == before
    with pytest.raises(OutputExistsError, match="other settings"):
        build_humanml3d(amass["root"], model_dir, out, mode="fixed", workers=1)  # type: ignore[arg-type]
    fixed = build_humanml3d(amass["root"], model_dir, out, mode="fixed", workers=1, overwrite=True)  # type: ignore[arg-type]
    # nothing of the other settings kept (and no HumanAct12 motion: not asked for this time)
    assert not fixed.kept and sorted(fixed.written) == sorted(set(report.written) - {amass["act"]})


def test_an_interrupted_build_resumes_to_the_same_bytes(
    amass: dict[str, object], model_dir: Path, tmp_path: Path
) -> None:
    """Stopped after its first file (as by Ctrl-C), a build run again gives the bytes of one uninterrupted run."""

    def stop(done: int, total: int) -> None:
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_humanml3d(amass["root"], model_dir, tmp_path / "cut", workers=1, progress=stop)  # type: ignore[arg-type]
    assert 0 < len(list((tmp_path / "cut" / "new_joint_vecs").iterdir())) < 2 * len(amass["rows"])  # type: ignore[arg-type]
    resumed = build_humanml3d(amass["root"], model_dir, tmp_path / "cut", workers=1)  # type: ignore[arg-type]
    whole = build_humanml3d(amass["root"], model_dir, tmp_path / "whole", workers=1)  # type: ignore[arg-type]
    assert resumed.kept and sorted(resumed.kept + resumed.written) == sorted(whole.written)
    for folder in ("new_joint_vecs", "new_joints"):
        names = sorted(p.name for p in (tmp_path / "whole" / folder).iterdir())
        assert names == sorted(p.name for p in (tmp_path / "cut" / folder).iterdir())
        for name in names:
            assert (tmp_path / "cut" / folder / name).read_bytes() == (
                tmp_path / "whole" / folder / name
            ).read_bytes()
    for name in ("Mean.npy", "Std.npy", "train.txt"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_fixed_mode_is_20_fps_with_each_files_gender(
    amass: dict[str, object], model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fixed"
    report = build_humanml3d(amass["root"], model_dir, out, mode="fixed", workers=1)  # type: ignore[arg-type]
    rows: dict[str, tuple[float, object, int]] = amass["rows"]  # type: ignore[assignment]
    fast = next(m for m, (fps, _, _) in rows.items() if fps == 250.0)
    assert fast in report.written
    row = BY_ID[fast]
    n = len(np.load(out / "new_joint_vecs" / f"{fast}.npy")) + 1
    assert n == round((row.trim + row.end) * 12 / 250 * 20) - round((row.trim + row.start) * 12 / 250 * 20)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert not manifest["published"] and "NOT the published data" in manifest["note"]


def test_the_command_runs_as_a_user_runs_it(
    amass: dict[str, object], model_dir: Path, tmp_path: Path
) -> None:
    """From another folder, with relative paths, twice: the second run keeps every motion."""
    work = tmp_path / "work"
    work.mkdir()
    root = Path(amass["root"])  # type: ignore[arg-type]
    command = [sys.executable, "-m", "amasskit", "humanml3d", "--catalog", os.path.relpath(root, work),
               "--body-models", os.path.relpath(model_dir, work), "-o", "out", "--jobs", "1"]  # fmt: skip
    first = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    text = " ".join((first.stdout + first.stderr).split())
    assert "motions built" in text and "slow" in text and "humanact12" in text
    second = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "0 motions built" in " ".join(second.stdout.split())
    assert (work / "out" / "new_joint_vecs").is_dir() and (work / "out" / "Mean.npy").is_file()
    described = subprocess.run([sys.executable, "-m", "amasskit", "info", "out"], cwd=work, capture_output=True,
                               text=True, timeout=120)  # fmt: skip
    assert described.returncode == 0 and "HumanML3D (exact: as published)" in " ".join(
        described.stdout.split()
    )


@pytest.mark.slow
def test_a_build_on_a_real_dask_cluster_gives_the_same_bytes(
    amass: dict[str, object], model_dir: Path, tmp_path: Path
) -> None:
    """`humanml3d --dask`: the motions built in a local cluster's workers equal those built in one process, byte for
    byte."""
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    from tests.cluster import local_cluster

    here = build_humanml3d(amass["root"], model_dir, tmp_path / "here", workers=1)  # type: ignore[arg-type]
    with local_cluster() as cluster:
        there = build_humanml3d(amass["root"], model_dir, tmp_path / "there", dask=cluster.scheduler_address)  # type: ignore[arg-type]
    assert sorted(here.written) == sorted(there.written) and here.written
    for folder in ("new_joint_vecs", "new_joints"):
        for path in sorted((tmp_path / "here" / folder).iterdir()):
            assert path.read_bytes() == (tmp_path / "there" / folder / path.name).read_bytes(), path.name
    for name in ("Mean.npy", "Std.npy", "all.txt"):
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes()


def test_rows_only_in_the_smplx_release_are_converted_when_asked(
    amass: dict[str, object], model_dir: Path, tmp_path: Path
) -> None:
    """With convert_smplx, the SMPL-X file is converted to SMPL+H (amasskit convert) and its row built from the
    conversion, named so in the manifest; without, it stays skipped."""
    report = build_humanml3d(amass["root"], model_dir, tmp_path / "x", convert_smplx=True, workers=1)  # type: ignore[arg-type]
    motion_id: str = amass["smplx"]  # type: ignore[assignment]
    assert motion_id in report.written and motion_id not in report.skipped
    manifest = json.loads((tmp_path / "x" / MANIFEST_NAME).read_text())
    assert manifest["motions"][motion_id]["converted_from_smplx"] and manifest["settings"]["convert_smplx"]
    vecs = np.load(tmp_path / "x" / "new_joint_vecs" / f"{motion_id}.npy")
    row = BY_ID[motion_id]
    assert vecs.shape == (row.end - row.start - 1, 263) and np.isfinite(vecs).all()
    again = build_humanml3d(amass["root"], model_dir, tmp_path / "x", convert_smplx=True, workers=1)  # type: ignore[arg-type]
    assert motion_id in again.kept and not again.written


def test_the_result_as_stores_for_the_loaders(
    amass: dict[str, object], model_dir: Path, tmp_path: Path
) -> None:
    """With store, each published split is also a store whose sequences are the split's motions, field for field
    the files, read by amasskit's clip dataset."""
    from amasskit.data import ClipDataset
    from amasskit.store import Store

    out = tmp_path / "built"
    build_humanml3d(amass["root"], model_dir, out, workers=1, store=True)  # type: ignore[arg-type]
    total = 0
    for split in ("train", "val", "test"):
        names = (out / f"{split}.txt").read_text().split()
        store = Store(out / "stores" / split)
        assert [s["id"] for s in store.sequences] == names
        for i, name in enumerate(names):
            start, length = int(store.offset[i]), int(store.length[i])
            features = np.asarray(store.fields["features"][start : start + length])
            assert np.array_equal(features, np.load(out / "new_joint_vecs" / f"{name}.npy"))
            joints = np.asarray(store.fields["joints"][start : start + length])
            assert np.array_equal(joints, np.load(out / "new_joints" / f"{name}.npy"))
        total += len(names)
        if names:
            clips = ClipDataset(out / "stores" / split, 8, fields=["features"])
            first = np.load(out / "new_joint_vecs" / f"{names[0]}.npy")
            if len(first) >= 8:
                assert np.array_equal(clips[0]["features"].numpy(), first[:8])
    assert total > 0


def test_a_file_corrupted_after_cataloguing_is_reported_and_the_rest_built(
    amass: dict[str, object], model_dir: Path, tmp_path: Path
) -> None:
    """A catalogued file cut short later fails by name with its typed error, its rows are listed as failed, nothing
    of them is written, the other files are built; with strict the build stops on it."""
    import shutil

    from amasskit.errors import AmassKitError

    tree = tmp_path / "tree"
    shutil.copytree(amass["root"], tree)  # type: ignore[arg-type]
    (tree / "amasskit-catalog.sqlite").unlink()
    scan(tree)
    victim = BY_ID[next(iter(amass["rows"]))]  # type: ignore[call-overload]
    dataset, subject, name = victim.place
    path = tree / ("BMLrub" if dataset == "BioMotionLab_NTroje" else dataset) / subject / f"{name}_poses.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    report = build_humanml3d(tree, model_dir, tmp_path / "out", workers=1)
    assert report.skipped[victim.motion_id].startswith("failed: CorruptFileError")
    assert not list((tmp_path / "out").rglob(f"*{victim.motion_id}.npy")) and report.written
    with pytest.raises(AmassKitError, match="stopped"):
        build_humanml3d(tree, model_dir, tmp_path / "strict", workers=1, strict=True)
