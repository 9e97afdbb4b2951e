"""Previews: the built-in skeleton's kinematics, the renderer against a reference image, videos' frame counts and
sizes, the inputs (files, stores, joints), headless operation and the CLI."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import roma
import torch
from PIL import Image
from typer.testing import CliRunner

from amasskit.cli import app
from amasskit.errors import RenderError
from amasskit.store import StoreWriter
from amasskit.viz import (
    SKELETON_PARENTS,
    SKELETON_REST,
    Track,
    View,
    frame_times,
    load_track,
    render,
    render_frames,
    skeleton_joints,
    tree_for,
)
from amasskit.viz._render import look_at, project

REFERENCE = Path(__file__).parent / "reference"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
#: set to 1 to (re)write the reference images from the current renderer, after looking at them
UPDATE = os.environ.get("AMASSKIT_UPDATE_REFERENCES") == "1"
STAND = np.array([np.pi / 2, 0.0, 0.0])  # the model's Y-up turned to AMASS's Z-up


def walk(T: int = 60, fps: float = 30.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed synthetic walk: hips and knees swing, arms down, moving along -Y (the way it faces)."""
    t = np.arange(T) / fps
    root = np.tile(STAND, (T, 1))
    pose = np.zeros((T, 21, 3))
    pose[:, 0, 0] = -0.5 * np.sin(2 * np.pi * t)  # left hip
    pose[:, 1, 0] = 0.5 * np.sin(2 * np.pi * t)  # right hip
    pose[:, 3, 0] = 0.4 * (1 - np.cos(2 * np.pi * t))  # left knee
    pose[:, 4, 0] = 0.4 * (1 + np.cos(2 * np.pi * t))  # right knee
    pose[:, 15, 2] = -1.2  # left shoulder down
    pose[:, 16, 2] = 1.2
    trans = np.stack([np.zeros(T), -1.1 * t, np.full(T, 0.95)], axis=1)
    return root, pose, trans


def test_rest_pose_and_rigid_bones() -> None:
    T = 40
    zero = skeleton_joints(np.zeros((T, 3)), np.zeros((T, 21, 3)), np.zeros((T, 3)))
    assert np.allclose(zero, SKELETON_REST)  # zero pose, zero translation: the rest pose
    rng = np.random.default_rng(0)
    root, pose, trans = rng.normal(size=(T, 3)), rng.normal(size=(T, 21, 3)), rng.normal(size=(T, 3))
    joints = skeleton_joints(root, pose, trans)
    parents = np.array(SKELETON_PARENTS[1:])
    rest_bones = np.linalg.norm(SKELETON_REST[1:] - SKELETON_REST[parents], axis=-1)
    bones = np.linalg.norm(joints[:, 1:] - joints[:, parents], axis=-1)
    assert np.allclose(bones, rest_bones[None])  # rotations never stretch a bone
    assert np.allclose(joints[:, 0], SKELETON_REST[0] + trans)  # the root turns about itself


def test_one_joint_turns_its_subtree_about_itself() -> None:
    """Only the left hip turned by R: the left knee, ankle and foot turn about the hip by R (checked with roma),
    nothing else moves."""
    R = roma.rotvec_to_rotmat(torch.tensor([0.3, -0.8, 0.5], dtype=torch.float64)).numpy()
    pose = np.zeros((1, 21, 3))
    pose[0, 0] = [0.3, -0.8, 0.5]
    joints = skeleton_joints(np.zeros((1, 3)), pose, np.zeros((1, 3)))[0]
    hip = SKELETON_REST[1]
    for j in (4, 7, 10):  # left knee, ankle, foot
        assert np.allclose(joints[j], hip + R @ (SKELETON_REST[j] - hip))
    others = [j for j in range(24) if j not in (4, 7, 10)]
    assert np.allclose(joints[others], SKELETON_REST[others])


def test_amass_orientation_stands_upright_in_z() -> None:
    root, pose, trans = walk(T=1)
    joints = skeleton_joints(root, pose, trans)[0]
    head, feet = joints[15, 2], joints[[10, 11], 2]
    assert head > 1.4 and np.all(np.abs(feet) < 0.1)  # Z-up: head high, soles near the floor at z = 0
    eye = np.array([0.0, -5.0, 1.0])
    uv, depth = project(joints, look_at(eye, np.array([0.0, 0.0, 0.9])), eye, 500.0, (240.0, 240.0))
    assert np.all(depth > 0) and uv[15, 1] < uv[10, 1]  # and the head is drawn above the feet


def _compare(image: np.ndarray, name: str, *, mean_tol: float = 1.5, frac_tol: float = 0.004) -> None:
    """``image`` against ``reference/<name>.png``: mean absolute difference (0-255) and the fraction of pixels off by
    more than 64. On failure the image and an amplified diff go to test-artifacts/ for a look."""
    path = REFERENCE / f"{name}.png"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(image).save(path)
    assert path.is_file(), (
        f"no reference image {path}; render it with AMASSKIT_UPDATE_REFERENCES=1 and look at it"
    )
    reference = np.asarray(Image.open(path).convert("RGB"))
    ok = reference.shape == image.shape
    if ok:
        diff = np.abs(reference.astype(np.int16) - image.astype(np.int16))
        mean, frac = float(diff.mean()), float((diff.max(axis=2) > 64).mean())
        ok = mean <= mean_tol and frac <= frac_tol
    if not ok:
        ARTIFACTS.mkdir(exist_ok=True)
        Image.fromarray(image).save(ARTIFACTS / f"{name}.actual.png")
        if reference.shape == image.shape:
            Image.fromarray(np.clip(diff * 4, 0, 255).astype(np.uint8)).save(ARTIFACTS / f"{name}.diff.png")
        pytest.fail(f"{name}: differs from {path} (shapes {reference.shape} vs {image.shape}"
                    + (f", mean {mean:.2f}, {frac:.2%} of pixels off by > 64" if reference.shape == image.shape else "")
                    + f"); see {ARTIFACTS}")  # fmt: skip


def walk_track(label: str = "synthetic walk") -> Track:
    root, pose, trans = walk()
    return Track(skeleton_joints(root, pose, trans), *tree_for(24), 30.0, label)


def test_skeleton_frame_matches_the_reference() -> None:
    track = walk_track()
    times = frame_times([track], 30.0)
    frames = list(render_frames([track], times[[0, 20]], View(width=240, height=240)))
    _compare(frames[1], "skeleton_walk_frame20")
    assert not np.array_equal(frames[0], frames[1])  # the pose moved


def test_side_by_side_and_overlay_layouts() -> None:
    a, b = walk_track("a"), walk_track("b")
    times = frame_times([a], 30.0)[:3]
    side = list(render_frames([a, b], times, View(width=120, height=100)))
    over = list(render_frames([a, b], times, View(width=120, height=100, overlay=True)))
    assert side[0].shape == (100, 240, 3) and over[0].shape == (100, 120, 3)
    assert np.array_equal(side[0][:, :120, :].shape, side[0][:, 120:, :].shape)


def test_gif_and_mp4_have_the_expected_frames_and_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imageio_ffmpeg

    monkeypatch.delenv("DISPLAY", raising=False)  # headless: nothing may need a display
    root, pose, trans = walk(T=45)
    np.save(tmp_path / "joints.npy", skeleton_joints(root, pose, trans))
    gif = render([tmp_path / "joints.npy"], tmp_path / "walk.gif", fps=15, view=View(width=96, height=80))
    with Image.open(gif) as im:
        assert im.n_frames == 22 and im.size == (96, 80)  # 1.5 s at 15 fps
    mp4 = render([tmp_path / "joints.npy", tmp_path / "joints.npy"], tmp_path / "walk.mp4", fps=30,
                 frames=(0, 30), view=View(width=96, height=80))  # fmt: skip
    count, _seconds = imageio_ffmpeg.count_frames_and_secs(str(mp4))  # decodes every frame
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(mp4)], capture_output=True,
                           text=True, check=False)  # fmt: skip
    size = re.search(r"Video: h264.*?, (\d+)x(\d+)", probe.stderr)
    assert size is not None and (int(size.group(1)), int(size.group(2))) == (192, 80) and count == 30
    assert not list(tmp_path.glob(".*partial*"))  # written beside and renamed


def test_store_inputs_render_the_same_skeleton_whatever_the_rotation(tmp_path: Path) -> None:
    """A store sequence drawn from rotation vectors and from rotation matrices gives the same joints as the motion
    itself; a store with a joints field is drawn from it."""
    root, pose, trans = walk(T=12)
    expected = skeleton_joints(root, pose, trans)
    for rep in ("rotvec", "rotmat", "6d"):
        writer = StoreWriter(tmp_path / rep)
        rot = roma.rotvec_to_rotmat(torch.from_numpy(np.concatenate([root[:, None], pose], axis=1))).numpy()
        as_rep = {"rotvec": np.concatenate([root[:, None], pose], axis=1), "rotmat": rot,
                  "6d": np.concatenate([rot[..., :, 0], rot[..., :, 1]], axis=-1)}[rep]  # fmt: skip
        writer.add({"root_orient": as_rep[:, 0], "pose_body": as_rep[:, 1:], "trans": trans}, fps=30.0,
                   betas=np.zeros(16), gender="male", meta={"name": "walk", "augmentation": "none"})  # fmt: skip
        writer.close({"rotation": rep})
        track = load_track(f"{tmp_path / rep}#0")
        assert np.allclose(track.joints, expected, atol=1e-5) and track.fps == 30.0 and "walk" in track.label
    writer = StoreWriter(tmp_path / "joints")
    writer.add({"root_orient": root, "pose_body": pose, "trans": trans, "joints": expected[:, :22] + 1.0},
               fps=30.0, betas=np.zeros(16), gender="male", meta={"name": "walk"})  # fmt: skip
    writer.close({"rotation": "rotvec"})
    assert np.allclose(load_track(tmp_path / "joints").joints, expected[:, :22] + 1.0)


def test_bad_inputs_are_typed_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((5, 7, 3)))
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "truncated.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr'")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    store = tmp_path / "store"
    writer = StoreWriter(store)
    writer.add({"trans": np.zeros((4, 3), np.float32)}, fps=30.0, betas=np.zeros(16), gender="male", meta={})
    writer.close({"rotation": "rotvec"})
    for spec in (tmp_path / "bad.npy", tmp_path / "notes.txt", f"{tmp_path}#3", tmp_path / "truncated.npy",
                 tmp_path / "objects.npy", f"{store}#x", f"{store}#7", f"{store}#0"):  # fmt: skip
        with pytest.raises(RenderError):
            load_track(spec)
    np.save(tmp_path / "ok.npy", np.zeros((5, 22, 3)))
    with pytest.raises(RenderError, match=r"\.mp4 or \.gif"):
        render([tmp_path / "ok.npy"], tmp_path / "out.avi")
    assert not (tmp_path / "out.avi").exists()


@pytest.mark.real_data
def test_cli_renders_a_real_file(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "preview.gif"
    result = CliRunner().invoke(app, ["render", str(samples / "amass_sample.npz"), "-o", str(out),
                                      "--frames", "0:60", "--size", "96"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.n_frames == 15 and im.size == (96, 96)  # 60 frames at 120 fps -> 0.5 s at 30 fps


def test_bad_rates_frame_ranges_and_values_are_typed_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "ok.npy", np.zeros((20, 22, 3)))
    for fps in (0.0, -30.0, float("nan"), float("inf")):
        with pytest.raises(RenderError, match="fps must be positive"):
            render([tmp_path / "ok.npy"], tmp_path / "out.gif", fps=fps)
        with pytest.raises(RenderError, match="fps must be positive"):
            load_track(tmp_path / "ok.npy", fps=fps)
    for frames in ((5, 5), (9, 3), (20, None), (100, 200), (-30, None)):
        with pytest.raises(RenderError, match="select nothing"):
            render([tmp_path / "ok.npy"], tmp_path / "out.gif", frames=frames)
    nan = np.zeros((20, 22, 3))
    nan[7, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(RenderError, match="not finite at 1 frames"):
        render([tmp_path / "nan.npy"], tmp_path / "out.gif")
    assert not (tmp_path / "out.gif").exists()
    assert render(
        [tmp_path / "ok.npy"], tmp_path / "out.gif", frames=(-10, None)
    ).is_file()  # the last 10 frames
    with pytest.MonkeyPatch.context() as patch:  # a range past the end is said, not silently clamped
        records: list[str] = []
        patch.setattr("amasskit.viz._inputs.logger.warning", lambda msg, *a: records.append(msg % a))
        render([tmp_path / "ok.npy"], tmp_path / "long.gif", frames=(0, 600))
    assert records and "has 20 frames; rendering 0:20" in records[0]
    result = CliRunner().invoke(app, ["render", str(tmp_path / "ok.npy"), "-o", str(tmp_path / "x.gif"),
                                      "--frames", "5:5"])  # fmt: skip
    assert result.exit_code == 1 and "RenderError" in result.output and "Traceback" not in result.output
