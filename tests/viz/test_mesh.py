"""Meshes from the offscreen OpenGL renderer (EGL; Mesa's software driver on CI): they land where the pinhole camera
puts the model's vertices, are lit (shaded, not flat), and the skeleton takes over where no context can be made."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from amasskit.body import BodyModel
from amasskit.cli import app
from amasskit.testing import smplh_arrays, write_npz
from amasskit.viz import View, render
from amasskit.viz._mesh import GLRenderer, gl_renderer, vertex_normals
from amasskit.viz._render import look_at, project


@pytest.fixture(scope="module")
def gl() -> GLRenderer:
    renderer = gl_renderer(320, 240)
    if renderer is None:
        pytest.skip(
            "no OpenGL context can be made here (no EGL/Mesa): the mesh path is untested on this machine"
        )
    return renderer


def posed_vertices(model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    model = BodyModel.load("smplh", "female", model_dir=model_dir, dtype=torch.float64)
    rng = np.random.default_rng(0)
    posed = model.with_shape(rng.normal(size=16) * 0.5).with_pose(
        root_orient=np.array([np.pi / 2, 0.0, 0.0]), pose_body=rng.normal(size=63) * 0.2, trans=np.zeros(3)
    )
    return posed.vertices.numpy(), model.faces.numpy()


def test_mesh_lands_where_the_pinhole_puts_its_vertices(gl: GLRenderer, model_dir: Path) -> None:
    vertices, faces = posed_vertices(model_dir)
    eye = np.array([1.5, -3.0, 1.2])
    R = look_at(eye, vertices.mean(axis=0))
    focal = 300.0
    rgba = gl.draw([(vertices, faces, (170, 185, 205))], R, eye, focal)
    assert rgba.shape == (240, 320, 4)
    uv, depth = project(vertices, R, eye, focal, (160.0, 120.0))
    assert np.all(depth > 0)
    px = np.floor(uv).astype(int)
    inside = (px[:, 0] >= 0) & (px[:, 0] < 320) & (px[:, 1] >= 0) & (px[:, 1] < 240)
    assert inside.mean() > 0.99
    silhouette = rgba[..., 3] > 0
    grown = silhouette.copy()  # within one pixel: a vertex on the outline may fall just beside a pixel centre
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown |= np.roll(np.roll(silhouette, dy, axis=0), dx, axis=1)
    assert grown[px[inside, 1], px[inside, 0]].mean() > 0.995  # OpenGL draws where the numpy pinhole projects
    assert silhouette[px[inside, 1], px[inside, 0]].mean() > 0.85
    lo, hi = px[inside].min(axis=0), px[inside].max(axis=0)
    outside = np.ones((240, 320), bool)
    outside[max(lo[1] - 3, 0) : hi[1] + 4, max(lo[0] - 3, 0) : hi[0] + 4] = False
    assert not rgba[outside, 3].any()  # nothing drawn away from the body
    shade = rgba[rgba[..., 3] > 0, :3].astype(float).mean(axis=1)
    assert shade.std() > 8  # lit and shaded, not one flat colour


def test_vertex_normals_point_outwards_on_a_closed_surface() -> None:
    # an octahedron: every vertex normal must point away from the centre
    vertices = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
    faces = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    normals = vertex_normals(vertices, faces)
    assert np.allclose(normals, vertices)


def test_render_with_a_model_draws_the_mesh_or_falls_back(
    gl: GLRenderer, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrays = smplh_arrays(num_frames=24)
    arrays["poses"][:, :3] = [np.pi / 2, 0, 0]
    arrays["trans"][:] = [0.0, 0.0, 0.9]
    motion = write_npz(tmp_path / "S1" / "walk_poses.npz", **arrays)
    view = View(width=160, height=160)
    mesh_gif = render([motion], tmp_path / "mesh.gif", model_dir=model_dir, fps=12, view=view)
    skeleton_gif = render([motion], tmp_path / "skel.gif", fps=12, view=view)
    import amasskit.viz._render as renderer_module

    monkeypatch.setattr(
        renderer_module, "gl_renderer", lambda w, h: None
    )  # no OpenGL: the model's joints drawn
    fallback_gif = render([motion], tmp_path / "fallback.gif", model_dir=model_dir, fps=12, view=view)

    def frame(path: Path) -> np.ndarray:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.int16)

    mesh, skeleton, fallback = frame(mesh_gif), frame(skeleton_gif), frame(fallback_gif)

    def saturated(img: np.ndarray) -> int:  # the bones' blue and orange; the mesh is a pale grey-blue
        return int((img.max(axis=2) - img.min(axis=2) > 100).sum())

    assert saturated(mesh) < 15  # a mesh, not bones
    assert (
        saturated(fallback) > 40 and saturated(skeleton) > 40
    )  # bones where GL is missing, and without a model
    changed = int((np.abs(mesh - skeleton).max(axis=2) > 30).sum())
    assert changed > 2 * saturated(skeleton)  # the body's silhouette covers far more than the bones


def test_overlaid_meshes_have_colour_keyed_labels(gl: GLRenderer, model_dir: Path, tmp_path: Path) -> None:
    """Two bodies overlaid as meshes: each label has a swatch of its mesh's own colour beside it."""
    from amasskit.viz import load_track, render_frames
    from amasskit.viz._render import _MESH_COLOURS

    arrays = smplh_arrays(num_frames=4)
    arrays["poses"][:, :3] = [np.pi / 2, 0, 0]
    first = write_npz(tmp_path / "S1" / "walk_poses.npz", **arrays)
    arrays["trans"][:] = [1.0, 0.0, 0.0]  # side by side in one panel
    second = write_npz(tmp_path / "S1" / "run_poses.npz", **arrays)
    size = 280
    tracks = [load_track(m, model_dir=model_dir, label=n) for m, n in ((first, "one"), (second, "two"))]
    image = next(render_frames(tracks, np.zeros(1), View(width=size, height=size, overlay=True))).astype(
        np.int16
    )
    text = max(10, size // 28)
    for k in range(2):  # the swatch's centre, in the row of the k-th label
        y, x = 8 + int(text * 1.25) * k + text // 2, 8 + text * 3 // 8
        assert np.abs(image[y, x] - np.array(_MESH_COLOURS[k])).max() < 24, (k, image[y, x])


def test_cli_no_mesh_draws_the_models_joints(gl: GLRenderer, model_dir: Path, tmp_path: Path) -> None:
    arrays = smplh_arrays(num_frames=12)
    motion = write_npz(tmp_path / "S1" / "a_poses.npz", **arrays)
    out = tmp_path / "joints.gif"
    result = CliRunner().invoke(app, ["render", str(motion), "-o", str(out), "--model-dir", str(model_dir),
                                      "--no-mesh", "--size", "96"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.size == (96, 96) and im.n_frames >= 1
