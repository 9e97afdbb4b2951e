"""The synthetic AMASS generator: deterministic, readable by every reader, release layouts, plausible motion."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

import amasskit
from amasskit import Gender, ModelType
from amasskit.errors import NotMotionFileError
from amasskit.synth import (
    DATASETS,
    MotionStyle,
    SynthSummary,
    load_lengths_table,
    motion_arrays,
    plan_tree,
    synth_sequence,
    synth_tree,
)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_deterministic_whatever_the_workers(tmp_path: Path) -> None:
    """The same seed gives byte-identical files (archives included) with 1 or 2 worker processes."""
    a = synth_tree(tmp_path / "a", files=6, lengths="short", seed=11, archives=True)
    b = synth_tree(tmp_path / "b", files=6, lengths="short", seed=11, archives=True, workers=2)
    c = synth_tree(tmp_path / "c", files=6, lengths="short", seed=12)
    assert _digest(a.root) == _digest(b.root)
    motion = [k for k in _digest(a.root) if k.endswith("_poses.npz")]
    assert motion and any(_digest(a.root)[k] != _digest(c.root).get(k) for k in motion)


def test_every_file_readable(smplh_tree: SynthSummary) -> None:
    motion, shapes = 0, 0
    for path in sorted(smplh_tree.root.rglob("*.npz")):
        try:
            header = amasskit.read_header(path)
        except NotMotionFileError:
            shapes += 1
            continue
        seq = amasskit.read(path, markers=True)
        motion += 1
        assert header.synthetic and header.num_frames == seq.num_frames and header.fps == seq.fps
        assert seq.model is ModelType.SMPLH and seq.dmpls is not None and seq.num_betas == 16
        assert seq.provenance.dataset == path.parts[-3]
    assert motion == smplh_tree.files == 19
    assert shapes >= 19
    assert sorted(smplh_tree.datasets) == sorted(d.name for d in DATASETS)


def test_smplh_layout_matches_the_release(smplh_tree: SynthSummary, samples: Path) -> None:
    """Keys and dtypes of a synthetic *_poses.npz are those of a real one (markers aside), plus the label."""
    real = np.load(samples / "amass_sample.npz")
    path = next(smplh_tree.root.rglob("*_poses.npz"))
    synth = np.load(path)
    real_keys = set(real.files) - {"marker_data", "marker_labels"}
    assert set(synth.files) - {"marker_data", "marker_labels", "amasskit_meta"} == real_keys
    for key in real_keys - {"gender"}:
        assert synth[key].dtype == real[key].dtype, key
        assert synth[key].shape[1:] == real[key].shape[1:], key


def test_smplx_layout(smplx_tree: SynthSummary) -> None:
    stageii = sorted(smplx_tree.root.rglob("*_stageii.npz"))
    assert len(stageii) == 12
    raw = np.load(stageii[0])
    expected = {"gender", "surface_model_type", "mocap_frame_rate", "mocap_time_length", "trans", "poses", "betas",
                "num_betas", "root_orient", "pose_body", "pose_hand", "pose_jaw", "pose_eye"}  # fmt: skip
    assert expected <= set(raw.files)
    assert "mocap_framerate" not in raw.files and "dmpls" not in raw.files
    assert (
        raw["poses"].shape[1] == 165 and raw["pose_hand"].shape[1] == 90 and raw["poses"].dtype == np.float64
    )
    assert str(raw["surface_model_type"]) == "smplx"
    assert np.array_equal(raw["poses"][:, 66:69], raw["pose_jaw"])
    seq = amasskit.read(stageii[0])
    assert seq.model is ModelType.SMPLX and seq.pose_jaw is not None
    stagei = sorted(smplx_tree.root.rglob("*_stagei.npz"))
    assert stagei and all(p.name.split("_")[0] in ("male", "female") for p in stagei)
    for p in stagei:
        with pytest.raises(NotMotionFileError):
            amasskit.read_header(p)


def test_release_variety_in_a_larger_plan() -> None:
    """Across a tree: str and bytes genders, frame rates 60/100/120/250 and non-integer ones, all 19 datasets."""
    plans = plan_tree(files=600, lengths="short", seed=0)
    fps = {p.fps for p in plans}
    assert {60.0, 100.0, 120.0, 250.0} <= fps
    assert any(f != round(f) for f in fps)
    assert {p.gender_as_bytes for p in plans} == {True, False}
    assert {p.gender for p in plans} == {Gender.MALE, Gender.FEMALE}
    assert {p.dataset for p in plans} == {d.name for d in DATASETS}
    assert len({p.relpath for p in plans}) == len(plans)
    # the proportions follow the release: KIT has the most files, SSM_synced about the fewest
    counts = {d.name: sum(p.dataset == d.name for p in plans) for d in DATASETS}
    assert counts["KIT"] == max(counts.values())


def test_bytes_gender_reaches_the_file(tmp_path: Path) -> None:
    plans = plan_tree(files=40, lengths="short", seed=0)
    summary = synth_tree(tmp_path / "t", files=40, lengths="short", seed=0)
    kinds = set()
    for plan in plans:
        raw = np.load(summary.root / plan.relpath)
        kinds.add(raw["gender"].dtype.kind)
        assert (raw["gender"].dtype.kind == "S") == plan.gender_as_bytes
        assert amasskit.read(summary.root / plan.relpath).gender is plan.gender
    assert kinds == {"S", "U"}


def test_real_lengths_come_from_the_table(samples: Path) -> None:
    table = load_lengths_table(samples / "npz_file_lens.json.gz")
    assert sum(len(v) for v in table.lengths.values()) == 14096
    assert sum(int(v.sum()) for v in table.lengths.values()) == 19_775_902
    plans = plan_tree(files=300, lengths="real", seed=5, table=table)
    for plan in plans:
        assert plan.num_frames in set(table.lengths[plan.dataset].tolist())


def test_fitted_lengths_without_the_table() -> None:
    """With no table, lengths follow the fitted distribution within each dataset's observed range."""
    plans = plan_tree(files=2000, lengths="real", seed=5, table=None)
    by_name = {d.name: d for d in DATASETS}
    lengths = np.array([p.num_frames for p in plans])
    for plan in plans:
        spec = by_name[plan.dataset]
        assert spec.min_frames <= plan.num_frames <= spec.max_frames
    assert 450 < np.median(lengths) < 1100  # the release's median is about 704 frames


def test_short_lengths() -> None:
    assert all(30 <= p.num_frames <= 180 for p in plan_tree(files=50, lengths="short", seed=1))


@pytest.mark.parametrize("seed", range(6))
def test_motion_is_humanly_plausible(seed: int) -> None:
    """Smooth, within human joint ranges, knees never bend backwards, a walking or standing root."""
    rng = np.random.default_rng(seed)
    style = MotionStyle.draw(rng)
    fps = 120.0
    m = motion_arrays(1200, fps, style)
    body_angle = np.linalg.norm(m["pose_body"], axis=-1)  # (T, 21)
    assert body_angle.max() < 1.6  # no joint turned further than about 90 degrees
    assert body_angle[:, [0, 1]].max() < 1.0  # hips
    # knees (SMPL joints 4 and 5) flex about +x only
    knees = m["pose_body"][:, [3, 4], :]
    assert (knees[..., 0] > 0).all() and (np.abs(knees[..., 1:]) < 0.2).all()
    # not noise and not zeros: joints move, smoothly
    assert m["pose_body"].std(axis=0).max() > 0.02
    step = np.linalg.norm(np.diff(m["pose_body"], axis=0), axis=-1).max() * fps
    assert step < 8.0  # rad/s
    # the pelvis stays at standing height; the root moves at walking speed at most
    assert (m["trans"][:, 2] > 0.8).all() and (m["trans"][:, 2] < 1.05).all()
    speed = np.linalg.norm(np.diff(m["trans"][:, :2], axis=0), axis=-1) * fps
    assert speed.max() < 1.8
    assert abs(speed.mean() - style.speed) < 0.05
    # upright: the body's up axis (model +Y) points along world +Z
    import roma
    import torch

    up = roma.rotvec_to_rotmat(torch.from_numpy(m["root_orient"]))[:, :, 1].numpy()
    assert (up[:, 2] > 0.95).all()


def test_motion_is_a_function_of_time() -> None:
    """The same style sampled at 60 and 120 fps agrees on the shared instants (frame 2k at 120 = frame k at 60)."""
    style = MotionStyle.draw(np.random.default_rng(3))
    a = motion_arrays(240, 120.0, style)
    b = motion_arrays(120, 60.0, style)
    for key in a:
        assert np.allclose(a[key][::2], b[key], atol=1e-9), key


def test_every_file_is_labelled_synthetic(smplh_tree: SynthSummary) -> None:
    for path in smplh_tree.root.rglob("*.npz"):
        meta = json.loads(str(np.load(path)["amasskit_meta"]))
        assert meta["synthetic"] is True and "SYNTHETIC" in meta["note"]
    assert "SYNTHETIC" in (smplh_tree.root / "SYNTHETIC.txt").read_text()
    assert json.loads((smplh_tree.root / "synth.json").read_text())["synthetic"] is True


def test_archives_hold_the_tree(smplh_tree: SynthSummary) -> None:
    """One <Archive>.tar.bz2 per sub-dataset, named as the release names it, unpacking to the tree's files."""
    names = {p.name for p in smplh_tree.archives}
    assert "BMLrub.tar.bz2" in names and "DFaust67.tar.bz2" in names and len(names) == 19
    with tarfile.open(smplh_tree.root / "archives" / "BMLrub.tar.bz2") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert all(name.split("/")[0] == "BioMotionLab_NTroje" for name in members)
        for name, member in members.items():
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                assert extracted.read() == (smplh_tree.root / name).read_bytes()


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    with pytest.raises(FileExistsError):
        synth_tree(tmp_path / "t", files=1, lengths="short")
    summary = synth_tree(tmp_path / "t", files=1, lengths="short", overwrite=True)
    assert summary.files == 1 and not any(p.name.startswith(".t.") for p in tmp_path.iterdir())


def test_synth_sequence_matches_its_plan() -> None:
    plan = plan_tree(files=3, lengths="short", seed=2)[1]
    seq = synth_sequence(plan, release="smplh", seed=2)
    assert seq.num_frames == plan.num_frames and seq.fps == plan.fps and seq.gender is plan.gender
    assert seq.dtype == np.float64 and np.array_equal(seq.betas, np.asarray(plan.betas))
