"""Fitting bodies with a prior: the skeleton's kinematics against the viewer's plain loop, inverse kinematics from
complete and partial joints, 2D keypoints under a known camera, motion denoising against a no-prior run, OpenPose
files and motion files, and the `prior denoise` / `prior fit` commands. The exact field of a known continuous pose
family (ManifoldField) stands in for a trained prior, so every answer can be checked against the truth."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from amasskit.body import BodyModel
from amasskit.cli import app
from amasskit.errors import ArrayShapeError, InvalidArgumentError, KeypointFileError
from amasskit.io import read
from amasskit.prior import (
    KEYPOINT_STEPS,
    DenoiseSchedule,
    Kinematics,
    ManifoldField,
    denoise_motion,
    fit_joints,
    fit_keypoint_files,
    fit_keypoints,
    fittable_keypoints,
    keypoint_stages,
    keypoints_from_joints,
    read_motion,
    read_openpose,
    save_motion,
    write_openpose,
)
from amasskit.prior.tasks._body import kabsch
from amasskit.rotations import (
    quat_to_rotvec,
    rotmat_to_rotvec,
    rotvec_to_quat,
    rotvec_to_rotmat,
)
from amasskit.synth import PoseManifold
from amasskit.viz._skeleton import skeleton_joints
from tests.cli import run_cli

LEFT_LEG = [4, 7, 10]  # knee, ankle, foot


@pytest.fixture(scope="module")
def manifold() -> PoseManifold:
    return PoseManifold(dim=2, seed=0)


@pytest.fixture(scope="module")
def field(manifold: PoseManifold) -> ManifoldField:
    return ManifoldField(manifold, refine=6)


def _pose(manifold: PoseManifold, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    quat = manifold.sample(count, seed=seed).astype(np.float64)
    return quat, np.asarray(quat_to_rotvec(quat))


def test_manifold_field_is_the_true_distance(manifold: PoseManifold) -> None:
    """Zero on the family; never above the brute-force distance to a fine grid of it, and within 0.5% of it (with
    the refinement this exactness needs; the fits below use a coarser one)."""
    from amasskit.prior import ExactField

    field = ManifoldField(manifold, refine=15)
    on = torch.from_numpy(manifold.sample(64, seed=1))
    assert float(field(on).abs().max()) < 1e-9
    noisy = on + 0.05 * torch.randn(on.shape, generator=torch.Generator().manual_seed(0))
    grid = ExactField(torch.from_numpy(manifold.poses(manifold.grid(200))), metric="posendf")(noisy)
    ours = field(noisy)
    assert (ours <= grid + 1e-9).all() and float(((grid - ours) / grid).max()) < 5e-3


def test_skeleton_kinematics_match_the_viewers_loop() -> None:
    """Batched torch forward kinematics of the built-in skeleton equal the viewer's joint-by-joint numpy loop."""
    rng = np.random.default_rng(0)
    root, body, trans = rng.normal(size=(6, 3)), rng.normal(0, 0.6, (6, 21, 3)), rng.normal(size=(6, 3))
    ours = Kinematics(dtype=torch.float64)(*(torch.from_numpy(a) for a in (root, body, trans)))
    np.testing.assert_allclose(ours.numpy(), skeleton_joints(root, body, trans)[:, :22], atol=1e-12)


def test_body_model_kinematics_are_the_models_joints(model_dir: Path) -> None:
    model = BodyModel.load("smplh", "female", model_dir=model_dir, dtype=torch.float64, dmpl=False)
    kin = Kinematics(model, num_betas=10, dtype=torch.float64)
    rng = np.random.default_rng(1)
    root, body, trans, betas = (torch.from_numpy(rng.normal(0, s, shape)) for s, shape in
                                ((0.5, (3, 3)), (0.4, (3, 21, 3)), (1.0, (3, 3)), (1.0, (3, 10))))  # fmt: skip
    expected = model.with_shape(betas).with_pose(root_orient=root, pose_body=body, trans=trans).joints[:, :22]
    torch.testing.assert_close(kin(root, body, trans, betas), expected)
    assert kin.vertices(root, body, trans, betas).shape == (3, model.num_vertices, 3)  # type: ignore[union-attr]


def test_kabsch_recovers_a_rigid_motion() -> None:
    rng = np.random.default_rng(2)
    src = rng.normal(size=(4, 10, 3))
    rot = rotvec_to_rotmat(rng.normal(size=(4, 3)))
    t = rng.normal(size=(4, 3))
    dst = np.einsum("nij,npj->npi", rot, src) + t[:, None]
    R, tt = kabsch(torch.from_numpy(src), torch.from_numpy(dst), torch.ones(4, 10, dtype=torch.float64))
    np.testing.assert_allclose(R.numpy(), rot, atol=1e-10)
    np.testing.assert_allclose(tt.numpy(), t, atol=1e-10)


def test_ik_recovers_known_poses_from_complete_joints(manifold: PoseManifold, field: ManifoldField) -> None:
    """Joints of poses on the family, placed and turned at random: the fitted joints are within 3 mm of them with
    the prior and without; with the prior the fitted pose is on the family (under 0.02, measured 0.001), without it
    the bones' twists leave it off (over 0.1, measured 0.26-0.36)."""
    _, rotvec = _pose(manifold, 4, seed=3)
    rng = np.random.default_rng(3)
    root = np.asarray(rotmat_to_rotvec(rotvec_to_rotmat(np.array([np.pi / 2, 0, 0])) @ rotvec_to_rotmat(
        rng.normal(0, 0.5, (4, 3)))))  # fmt: skip
    observed = skeleton_joints(root, rotvec, rng.normal(0, 0.5, (4, 3)))[:, :22]
    kin = Kinematics()
    fits = {}
    for name, prior in (("prior", field), ("none", None)):
        fits[name] = fit = fit_joints(prior, observed, kinematics=kin, hypotheses=3)
        assert fit.joints.shape == (4, 3, 22, 3)
        assert np.linalg.norm(fit.joints[:, 0] - observed, axis=-1).mean() < 3e-3
        assert (np.diff(fit.loss, axis=1) >= 0).all()  # hypotheses best first
    # without the prior the bones' twists, which joints do not fix, leave the pose off the family
    off = field(torch.from_numpy(rotvec_to_quat(fits["none"].pose_body[:, 0])))
    assert float(off.min()) > 0.1
    assert (fits["prior"].distance[:, 0] < 0.02).all()


def test_ik_completes_a_hidden_leg_plausibly(manifold: PoseManifold, field: ManifoldField) -> None:
    """The left leg hidden: the visible joints are matched, every hypothesis is a plausible pose (near the
    family), the hypotheses differ, the best completes the leg within 3 cm; without the prior the leg is wherever
    its start left it. The same seed gives the same fits."""
    _, rotvec = _pose(manifold, 3, seed=4)
    root = np.tile([np.pi / 2, 0.0, 0.0], (3, 1))
    observed = skeleton_joints(root, rotvec, np.zeros((3, 3)))[:, :22]
    hidden = observed.copy()
    hidden[:, LEFT_LEG] = np.nan
    kin = Kinematics()
    fit = fit_joints(field, hidden, kinematics=kin, hypotheses=5, w_prior=10.0)
    seen = [j for j in range(22) if j not in LEFT_LEG]
    err = np.linalg.norm(fit.joints - observed[:, None], axis=-1)  # (N, K, 22)
    assert err[:, 0, seen].mean() < 5e-3
    assert (fit.distance < 0.02).all()
    assert err[:, 0, LEFT_LEG].mean() < 0.03
    assert np.ptp(fit.pose_body[:, :, [j - 1 for j in LEFT_LEG]], axis=1).max() > 1e-3
    # the same seed, the same fits (on a short schedule: determinism, not quality, is checked here)
    short = [
        fit_joints(field, hidden, kinematics=kin, hypotheses=5, w_prior=10.0, steps=30) for _ in range(2)
    ]
    np.testing.assert_array_equal(short[0].pose_body, short[1].pose_body)
    with pytest.raises(InvalidArgumentError, match="at least one observed"):
        fit_joints(field, np.full((1, 22, 3), np.nan), kinematics=kin)


def test_2d_fit_recovers_a_known_pose_under_a_known_camera(
    manifold: PoseManifold, field: ManifoldField, tmp_path: Path
) -> None:
    """Keypoints projected from a known body (turned, 3 m away) through OpenPose's JSON: with the prior the best
    hypothesis reprojects within 1 px and its 3D joints (about the pelvis) are within 2 cm of the truth; without
    the prior the reprojection is as good but the depth-ambiguous 3D pose is not (more than twice the error)."""
    _, rotvec = _pose(manifold, 2, seed=5)
    turn = rotvec_to_rotmat(np.array([0, 0.3, 0])) @ rotvec_to_rotmat(np.array([np.pi, 0, 0]))
    root = np.repeat(np.asarray(rotmat_to_rotvec(turn))[None], 2, 0)
    joints = skeleton_joints(root, rotvec, np.array([[0.1, 0.2, 3.0], [-0.2, 0.0, 3.5]]))[:, :22]
    camera = (1000.0, 1000.0, 500.0, 500.0)
    for i, kp in enumerate(keypoints_from_joints(joints, camera)):
        write_openpose(tmp_path / f"{i}.json", kp[None])
    keypoints = np.stack([read_openpose(tmp_path / f"{i}.json") for i in range(2)])
    kin = Kinematics()
    errors = {}
    for name, prior in (("prior", field), ("none", None)):
        fit = fit_keypoints(prior, keypoints, intrinsics=camera, kinematics=kin, hypotheses=6)
        assert fit.terms["reprojection_px"] < 1.0
        rel = fit.joints[:, 0] - fit.joints[:, 0, :1]
        errors[name] = np.linalg.norm(rel - (joints - joints[:, :1]), axis=-1).mean()
    assert errors["prior"] < 0.02 and errors["none"] > 2 * errors["prior"]


def test_denoising_beats_no_prior(manifold: PoseManifold, field: ManifoldField) -> None:
    """A 60-frame walk along the family with 40 mm joint noise: Pose-NDF's schedule (after a warm-up without the
    prior, from the rest pose) lowers MPJPE against the clean joints by at least 15% over the same fit without
    the prior, which itself beats the raw noise."""
    T = 60
    tau = np.linspace(0, 1, T)[:, None]
    rotvec = np.asarray(quat_to_rotvec(manifold.poses(np.array([0.5, 2.0]) + tau * np.array([1.5, -1.0])).astype(
        np.float64)))  # fmt: skip
    root = np.tile([np.pi / 2, 0.0, 0.0], (T, 1))
    trans = np.concatenate([tau, np.zeros((T, 2))], axis=1)
    clean = skeleton_joints(root, rotvec, trans)[:, :22]
    noisy = clean + np.random.default_rng(0).normal(0, 0.04, clean.shape)
    init = {"root_orient": root, "pose_body": np.zeros((T, 21, 3)), "trans": trans}
    kin = Kinematics()
    mpjpe = {}
    for name, prior in (("prior", field), ("none", None)):
        fit = denoise_motion(prior, noisy, kinematics=kin, init=init, warmup=150)
        mpjpe[name] = np.linalg.norm(fit.joints - clean, axis=-1).mean()
    raw = np.linalg.norm(noisy - clean, axis=-1).mean()
    assert mpjpe["none"] < raw and mpjpe["prior"] < 0.85 * mpjpe["none"], (mpjpe, raw)


def test_posendf_schedule_is_the_published_one() -> None:
    s = DenoiseSchedule.posendf()
    assert (s.lr, s.steps) == (0.03, 50)
    assert s.temporal == (10, 20, 30, 40, 50) and s.data == (100, 50, 20, 10, 100 / 17)
    assert s.betas == (10,) * 5 and s.prior == (1e5, 2e5, 3e5, 4e5, 5e5)
    assert s.scaled(prior=0).prior == (0,) * 5
    assert DenoiseSchedule.from_mapping({"rounds": 2, "lr": 0.1}).data == (100, 50)
    with pytest.raises(InvalidArgumentError, match="one weight per round"):
        DenoiseSchedule(data=(1.0,), temporal=(1.0, 2.0), betas=(1.0,), prior=(1.0,))


def test_openpose_files_bad_and_good(tmp_path: Path) -> None:
    """Typed errors naming the file for what is not OpenPose BODY_25; the most confident person by default."""
    cases = {"notjson.json": "{people: ", "nopeople.json": json.dumps({"version": 1.3}),
             "empty.json": json.dumps({"people": []}),
             "short.json": json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 54}]}),
             "text.json": json.dumps({"people": [{"pose_keypoints_2d": ["a"] * 75}]})}  # fmt: skip
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(KeypointFileError) as info:
            read_openpose(tmp_path / name)
        assert name in str(info.value)
    with pytest.raises(KeypointFileError, match="no such file"):
        read_openpose(tmp_path / "missing.json")
    kp = np.random.default_rng(0).uniform(0, 1, (2, 25, 3))
    kp[1, :, 2] += 1
    write_openpose(tmp_path / "two.json", kp)
    np.testing.assert_allclose(read_openpose(tmp_path / "two.json"), kp[1])
    np.testing.assert_allclose(read_openpose(tmp_path / "two.json", person=0), kp[0])
    with pytest.raises(KeypointFileError, match="person 5"):
        read_openpose(tmp_path / "two.json", person=5)


def test_motion_files_in_and_out(tmp_path: Path) -> None:
    """HuMoR-style npz is read; a pose of another joint count is a typed error naming the file; what
    save_motion writes is a motion file amasskit reads back."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "humor.npz", root_orient=rng.normal(size=(5, 3)), pose_body=rng.normal(size=(5, 63)),
             trans=rng.normal(size=(5, 3)), betas=rng.normal(size=(16,)), fps=30.0)  # fmt: skip
    motion = read_motion(tmp_path / "humor.npz")
    assert motion["pose_body"].shape == (5, 21, 3) and motion["fps"] == 30.0
    np.savez(tmp_path / "wrong.npz", root_orient=rng.normal(size=(5, 3)), pose_body=rng.normal(size=(5, 69)))
    with pytest.raises(ArrayShapeError, match=r"wrong\.npz"):
        read_motion(tmp_path / "wrong.npz")
    save_motion(
        tmp_path / "out.npz", pose_body=motion["pose_body"], trans=motion["trans"], prior_distance=np.ones(5)
    )
    seq = read(tmp_path / "out.npz")
    np.testing.assert_allclose(seq.pose_body, motion["pose_body"], atol=1e-6)
    assert read_motion(tmp_path / "out.npz")["pose_body"].shape == (5, 21, 3)


def _run(*args: str) -> SimpleNamespace:
    return run_cli("prior", *args)


def test_the_denoise_and_fit_commands(manifold: PoseManifold, tmp_path: Path, model_dir: Path) -> None:
    """`prior denoise` (skeleton and body model) and `prior fit` (3D joints with a hidden leg; OpenPose JSON) with
    no prior and short schedules: the outputs are motion files the viewer's reader takes; bad inputs fail with
    their typed error."""
    from amasskit.viz._inputs import load_track

    T = 8
    rotvec = np.asarray(quat_to_rotvec(manifold.sample(T, seed=0).astype(np.float64)))
    save_motion(tmp_path / "in.npz", pose_body=rotvec + np.random.default_rng(0).normal(0, 0.1, rotvec.shape))
    run = _run("denoise", "none", str(tmp_path / "in.npz"), "-o", str(tmp_path / "d.npz"), "--rounds", "2",
               "--steps", "10")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert read(tmp_path / "d.npz").num_frames == T and load_track(tmp_path / "d.npz").joints.shape[0] == T
    track = load_track(tmp_path / "d.npz")
    assert "prior distance" not in track.per_frame  # no prior, no distance: NaN is not shown as a fact
    rendered = CliRunner().invoke(app, ["render", str(tmp_path / "d.npz"), "-o", str(tmp_path / "d.gif")])
    assert rendered.exit_code == 0 and (tmp_path / "d.gif").stat().st_size > 0, rendered.output[-2000:]
    run = _run("denoise", "none", str(tmp_path / "in.npz"), "-o", str(tmp_path / "m.npz"), "--rounds", "1",
               "--steps", "5", "--model-dir", str(model_dir))  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]

    joints = skeleton_joints(np.tile([np.pi / 2, 0, 0], (2, 1)), rotvec[:2], np.zeros((2, 3)))[:, :22]
    np.save(tmp_path / "joints.npy", joints)
    import amasskit.cli._app as cli_app

    with pytest.MonkeyPatch.context() as patch:  # where stderr is no terminal, progress is logged as lines
        patch.setattr(cli_app, "PROGRESS_LINE_SECONDS", 0.0)
        run = _run("fit", "none", str(tmp_path / "joints.npy"), "-o", str(tmp_path / "f.npz"), "--hide", "4,7,10",
                   "--hypotheses", "3", "--steps", "60")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "fitting joints (steps): 30/60" in run.stderr and "fitting joints (steps): 60/60" in run.stderr
    with np.load(tmp_path / "f.npz") as f:
        assert f["observation"].tolist() == [0, 0, 0, 1, 1, 1] and f["fit_loss"].shape == (6,)
    assert read(tmp_path / "f.npz").num_frames == 6

    camera = (1000.0, 1000.0, 500.0, 500.0)
    body = skeleton_joints(np.array([[np.pi, 0, 0]]), rotvec[:1], np.array([[0, 0, 3.0]]))[:, :22]
    write_openpose(tmp_path / "kp.json", keypoints_from_joints(body, camera))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli_app, "PROGRESS_LINE_SECONDS", 0.0)
        run = _run("fit", "none", str(tmp_path / "kp.json"), "-o", str(tmp_path / "k.npz"), "--intrinsics",
                   ",".join(map(str, camera)), "--steps", "60")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "reprojection" in run.stdout and "fitting keypoints (steps): 60/60" in run.stderr
    assert keypoint_stages(60) == (10, 15, 15, 20) and keypoint_stages(4) == (1, 1, 1, 1)
    assert sum(keypoint_stages(601)) == 601 and keypoint_stages(600) == KEYPOINT_STEPS
    (tmp_path / "bad.json").write_text('{"people": [{"pose_keypoints_2d": [1, 2]}]}')
    # a batch with a malformed frame: reported and skipped, the others fitted; with --strict it stops, naming it
    run = _run("fit", "none", str(tmp_path / "kp.json"), str(tmp_path / "bad.json"), "-o", str(tmp_path / "b.npz"),
               "--intrinsics", ",".join(map(str, camera)), "--steps", "8")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "skipped" in run.stdout and str(tmp_path / "bad.json") in run.stdout  # whole, however long
    with np.load(tmp_path / "b.npz") as b:
        assert b["source"].tolist() == ["kp.json"]
        by_command = {k: b[k] for k in b.files}
    # the command is one library call: the same call gives the same file, and says what it skipped and why; a
    # person with fewer than 6 confident body keypoints is skipped as well
    faint = keypoints_from_joints(body, camera)
    faint[..., 2] = 0.05
    write_openpose(tmp_path / "faint.json", faint)
    done = fit_keypoint_files(None, [tmp_path / "kp.json", tmp_path / "bad.json", tmp_path / "faint.json"],
                              tmp_path / "lib.npz", intrinsics=camera, kinematics=Kinematics(), steps=8)  # fmt: skip
    assert done.sources == ["kp.json"] and [Path(f).name for f, _ in done.skipped] == [
        "bad.json",
        "faint.json",
    ]
    assert "fewer than 6 confident" in done.skipped[1][1] and not fittable_keypoints(faint).any()
    with np.load(tmp_path / "lib.npz") as lib:
        assert set(lib.files) == set(by_command)
        assert all(np.array_equal(lib[k], by_command[k]) for k in by_command)
    bad = _run("fit", "none", str(tmp_path / "kp.json"), str(tmp_path / "bad.json"), "--intrinsics", "1000,500,500",
               "--strict", "-o", str(tmp_path / "x.npz"))  # fmt: skip
    assert bad.returncode != 0 and "KeypointFileError" in bad.stderr and "bad.json" in bad.stderr
    alone = _run("fit", "none", str(tmp_path / "bad.json"), "--intrinsics", "1000,500,500", "-o",
                 str(tmp_path / "y.npz"))  # fmt: skip
    assert alone.returncode != 0 and "could be fitted" in alone.stderr
    for option, value in (("--intrinsics", "1000,a,500"), ("--hide", "4,x")):
        bad = _run("fit", "none", str(tmp_path / ("kp.json" if option == "--intrinsics" else "joints.npy")), option,
                   value, "-o", str(tmp_path / "z.npz"))  # fmt: skip
        assert bad.returncode != 0 and "InvalidArgumentError" in bad.stderr and option in bad.stderr
    missing = _run("denoise", str(tmp_path / "nope.pt"), str(tmp_path / "in.npz"))
    assert missing.returncode != 0 and "nope.pt" in missing.stderr


def test_every_use_runs_on_a_released_checkpoint(tmp_path: Path, smplh_tree: object) -> None:
    """A checkpoint in Pose-NDF's released layout (legacy serialisation, config.yaml beside it, the official parent
    map, WXYZ): sample, interpolate, denoise, fit and evaluate each run from one command on it."""
    from tests.prior.test_model import OFFICIAL, official_state, write_official

    config = (
        "model:\n  DFNet:\n    dims: 32, 48, 16\n    act: lrelu\n    beta: 100\n  StrEnc:\n    use: True\n"
    )
    ckpt = write_official(tmp_path / "posendf", official_state(OFFICIAL, [32, 48, 16], seed=3), config)
    motion = max(Path(smplh_tree.root).rglob("*_poses.npz"), key=lambda p: p.stat().st_size)  # type: ignore[attr-defined]
    joints = skeleton_joints(np.tile([np.pi / 2, 0, 0], (1, 1)), np.zeros((1, 21, 3)), np.zeros((1, 3)))[
        :, :22
    ]
    np.save(tmp_path / "joints.npy", joints)
    runs = [
        ("sample", str(ckpt), "-n", "4", "--max-steps", "5", "-o", str(tmp_path / "s.npz")),
        ("interpolate", str(ckpt), f"{motion}#0", f"{motion}#20", "--steps", "3", "-o", str(tmp_path / "i.npz")),
        ("denoise", str(ckpt), str(motion), "--frames", "0:10", "--rounds", "1", "--steps", "5", "-o",
         str(tmp_path / "d.npz")),
        ("fit", str(ckpt), str(tmp_path / "joints.npy"), "--steps", "20", "--hypotheses", "2", "-o",
         str(tmp_path / "f.npz")),
        ("evaluate", str(ckpt), "none", "--motion", str(motion), "--samples", "8", "--completion", "1", "--noise",
         "40", "--pose-noise", "", "-o", str(tmp_path / "r.json")),
    ]  # fmt: skip
    for args in runs:
        run = _run(*args)
        assert run.returncode == 0, (args[0], run.stderr[-2000:])
    assert read(tmp_path / "d.npz").num_frames == 10
    assert json.loads((tmp_path / "r.json").read_text())["reports"][str(ckpt)]["generation"] is not None
