"""Body models: loading, parity with smplx (float64, 1e-5), joints-only path, gradients, errors, SMPL pickles."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import roma
import torch

import amasskit
from amasskit.body import BodyModel, BodyModelModule, ModelKind, find_model_file, load_model_data
from amasskit.errors import BodyModelFileError, BodyModelNotFoundError
from amasskit.testing import smpl_model_arrays, write_smpl_pickle

smplx = pytest.importorskip("smplx", reason="smplx is the test-only reference (pip install 'amasskit[test]')")

F64 = torch.float64


class SMPLH16(smplx.SMPLH):  # type: ignore[misc]
    """smplx caps SMPL+H to 10 betas when the file has fewer than 300 shape directions; AMASS's have 16."""

    SHAPE_SPACE_DIM = 16


def rand(g: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=g, dtype=F64) * scale


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("gender", ["male", "female", "neutral"])
def test_smplh_parity_with_smplx(model_dir: Path, seed: int, gender: str) -> None:
    """Vertices and joints equal smplx's within 1e-5 (float64) over random shapes (16 betas) and poses."""
    ours = BodyModel.load("smplh", gender, model_dir=model_dir, dtype=F64, dmpl=False)
    ref = SMPLH16(model_path=str(model_dir / "smplh" / gender / "model.npz"), ext="npz", num_betas=16,
                  use_pca=False, flat_hand_mean=True, dtype=F64)  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    B = 6
    betas, root, body = rand(g, B, 16), rand(g, B, 3, scale=1.0), rand(g, B, 63, scale=0.5)
    hands, trans = rand(g, B, 90, scale=0.4), rand(g, B, 3)
    out = ref(betas=betas, global_orient=root, body_pose=body, left_hand_pose=hands[:, :45],
              right_hand_pose=hands[:, 45:], transl=trans)  # fmt: skip
    posed = ours.with_shape(betas).with_pose(root_orient=root, pose_body=body, pose_hand=hands, trans=trans)
    assert torch.allclose(posed.vertices, out.vertices, atol=1e-5, rtol=0)
    assert torch.allclose(posed.joints, out.joints[:, :52], atol=1e-5, rtol=0)


@pytest.mark.parametrize("seed", range(3))
def test_smplx_parity_with_smplx(model_dir: Path, seed: int) -> None:
    ours = BodyModel.load("smplx", "neutral", model_dir=model_dir, dtype=F64)
    ref = smplx.SMPLX(model_path=str(model_dir / "smplx" / "SMPLX_NEUTRAL.npz"), ext="npz", num_betas=16,
                      num_expression_coeffs=10, use_pca=False, flat_hand_mean=True, use_face_contour=False,
                      dtype=F64)  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    B = 5
    betas, expr, root, body = rand(g, B, 16), rand(g, B, 10), rand(g, B, 3), rand(g, B, 63, scale=0.5)
    jaw, eyes, hands, trans = (
        rand(g, B, 3, scale=0.2),
        rand(g, B, 2, 3, scale=0.1),
        rand(g, B, 90, scale=0.4),
        rand(g, B, 3),
    )
    out = ref(betas=betas, expression=expr, global_orient=root, body_pose=body, jaw_pose=jaw, leye_pose=eyes[:, 0],
              reye_pose=eyes[:, 1], left_hand_pose=hands[:, :45], right_hand_pose=hands[:, 45:], transl=trans)  # fmt: skip
    posed = ours.with_shape(betas, expression=expr).with_pose(
        root_orient=root, pose_body=body, pose_hand=hands, pose_jaw=jaw, pose_eye=eyes, trans=trans
    )
    assert torch.allclose(posed.vertices, out.vertices, atol=1e-5, rtol=0)
    assert torch.allclose(posed.joints, out.joints[:, :55], atol=1e-5, rtol=0)


def test_smpl_pickle_without_chumpy_and_parity(model_dir: Path, tmp_path: Path) -> None:
    """A release-style SMPL pickle (chumpy objects, a scipy CSC regressor) loads without chumpy or scipy, and poses
    as smplx poses the same arrays."""
    arrays = smpl_model_arrays()
    (tmp_path / "smpl").mkdir()
    write_smpl_pickle(tmp_path / "smpl" / "SMPL_MALE.pkl", arrays)
    data = load_model_data("smpl", "male", model_dir=tmp_path)
    assert data.kind is ModelKind.SMPL and data.num_joints == 24 and data.num_betas == 10
    assert np.array_equal(data.J_regressor, arrays["J_regressor"]) and np.array_equal(
        data.weights, arrays["weights"]
    )
    (tmp_path / "smpl_ref.pkl").write_bytes(
        pickle.dumps(arrays)
    )  # plain arrays, for the reference's own loader
    ref = smplx.SMPL(model_path=str(tmp_path / "smpl_ref.pkl"), dtype=F64)
    ours = BodyModel.load(tmp_path / "smpl" / "SMPL_MALE.pkl", "male", dtype=F64)
    g = torch.Generator().manual_seed(0)
    betas, root, body, trans = rand(g, 4, 10), rand(g, 4, 3), rand(g, 4, 69, scale=0.4), rand(g, 4, 3)
    out = ref(betas=betas, global_orient=root, body_pose=body, transl=trans)
    posed = ours.with_shape(betas).with_pose(root_orient=root, pose_body=body, trans=trans)
    assert torch.allclose(posed.vertices, out.vertices, atol=1e-5, rtol=0)
    assert torch.allclose(posed.joints, out.joints[:, :24], atol=1e-5, rtol=0)


def test_hostile_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "SMPL_MALE.pkl"
    path.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    with pytest.raises(BodyModelFileError, match="refusing to load"):
        load_model_data(path)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["smplh", "smplx"])
def test_joints_only_path_equals_full_path(model_dir: Path, kind: str) -> None:
    model = BodyModel.load(kind, "female", model_dir=model_dir, dtype=F64)
    g = torch.Generator().manual_seed(1)
    shaped = model.with_shape(rand(g, 3, 16))
    regressed = torch.einsum("jv,bvc->bjc", model.J_regressor, shaped.vertices_rest)
    assert torch.allclose(shaped.joints_rest, regressed, atol=1e-12)
    posed = shaped.with_pose(root_orient=rand(g, 3, 3), pose_body=rand(g, 3, 21, 3, scale=0.4))
    # the full path: regress the joints from the shaped vertices, then pose them
    from amasskit.body import forward_kinematics

    _, fk = forward_kinematics(posed.rel_rotmat, regressed, model.levels)
    assert torch.allclose(posed.joints, fk, atol=1e-12)


@pytest.mark.parametrize("kind", ["smplh", "smplx"])
def test_zero_pose_zero_shape_is_the_template(model_dir: Path, kind: str) -> None:
    model = BodyModel.load(kind, "male", model_dir=model_dir, dtype=F64)
    posed = model.with_shape(torch.zeros(1, 16, dtype=F64)).with_pose(
        root_orient=torch.zeros(1, 3, dtype=F64)
    )
    assert torch.allclose(posed.vertices[0], model.v_template, atol=1e-12)
    assert torch.allclose(posed.joints[0], model.J_regressor @ model.v_template, atol=1e-12)


def test_gradients_pass_gradcheck(model_dir: Path) -> None:
    model = BodyModel.load("smplh", "female", model_dir=model_dir, dtype=F64)
    g = torch.Generator().manual_seed(2)
    betas = rand(g, 1, 16).requires_grad_()
    root = rand(g, 1, 3, scale=0.5).requires_grad_()
    body = rand(g, 1, 21, 3, scale=0.3).requires_grad_()
    trans = rand(g, 1, 3).requires_grad_()
    idx = torch.arange(0, 6890, 300)  # a spread of vertices keeps the numerical Jacobian small

    def f(
        b: torch.Tensor, r: torch.Tensor, p: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        posed = model.with_shape(b).with_pose(root_orient=r, pose_body=p, trans=t)
        return posed.joints, posed.vertices[:, idx]

    assert torch.autograd.gradcheck(f, (betas, root, body, trans), eps=1e-6, atol=1e-5)
    joints, vertices = f(betas, root, body, trans)
    (joints.sum() + vertices.sum()).backward()
    assert all(x.grad is not None and torch.isfinite(x.grad).all() for x in (betas, root, body, trans))


def test_rotation_representations_agree(model_dir: Path) -> None:
    model = BodyModel.load("smplh", "male", model_dir=model_dir, dtype=F64)
    g = torch.Generator().manual_seed(3)
    shaped = model.with_shape(rand(g, 2, 16))
    root, body, hands = rand(g, 2, 3), rand(g, 2, 21, 3, scale=0.5), rand(g, 2, 30, 3, scale=0.3)
    reference = shaped.with_pose(root_orient=root, pose_body=body, pose_hand=hands).vertices
    as_mat = [roma.rotvec_to_rotmat(x) for x in (root, body, hands)]
    as_quat = [roma.rotvec_to_unitquat(x) for x in (root, body, hands)]
    as_6d = [m[..., :, :2].transpose(-1, -2).reshape(*m.shape[:-2], 6) for m in as_mat]
    names = ("root_orient", "pose_body", "pose_hand")
    for rotation, parts in (("rotmat", as_mat), ("quat", as_quat), ("6d", as_6d)):
        posed = shaped.with_pose(**dict(zip(names, parts, strict=True)), rotation=rotation)
        assert torch.allclose(posed.vertices, reference, atol=1e-10), rotation
    flat = shaped.with_pose(  # AMASS's flat layout
        root_orient=root, pose_body=body.reshape(2, 63), pose_hand=hands.reshape(2, 90)
    ).vertices
    assert torch.allclose(flat, reference, atol=1e-12)


def test_batch_dimensions_broadcast_and_dtypes(model_dir: Path) -> None:
    model = BodyModel.load("smplh", "male", model_dir=model_dir)
    g = torch.Generator().manual_seed(4)
    betas = torch.randn(2, 1, 16, generator=g)
    body = torch.randn(1, 3, 21, 3, generator=g) * 0.3
    posed = model.with_shape(betas).with_pose(root_orient=torch.zeros(3), pose_body=body)
    assert posed.joints.shape == (2, 3, 52, 3) and posed.vertices.shape == (2, 3, 6890, 3)
    assert posed.vertices.dtype == torch.float32
    f64 = model.to(dtype=F64).with_shape(betas).with_pose(root_orient=torch.zeros(3), pose_body=body)
    assert torch.allclose(posed.vertices.double(), f64.vertices, atol=1e-4)
    single = model.with_shape(betas[1, 0]).with_pose(root_orient=torch.zeros(3), pose_body=body[0, 2])
    assert torch.allclose(single.vertices, posed.vertices[1, 2], atol=1e-5)


def test_dmpls_move_the_soft_tissue(model_dir: Path) -> None:
    model = BodyModel.load("smplh", "female", model_dir=model_dir, dtype=F64)
    assert model.num_dmpls == 8
    d = torch.linspace(-1, 1, 8, dtype=F64)
    rest = model.with_shape(torch.zeros(16, dtype=F64), dmpls=d).with_pose()
    eigvec = torch.as_tensor(model.data.dmpl_eigvec)
    expected_rest = model.v_template + eigvec @ d
    assert torch.allclose(rest.shaped.vertices_rest, expected_rest, atol=1e-12)
    without = BodyModel.load("smplh", "female", model_dir=model_dir, dmpl=False)
    with pytest.raises(ValueError, match="no dmpls"):
        without.with_shape(dmpls=d)


def test_sequence_joints_and_vertices_in_chunks(model_dir: Path) -> None:
    model = BodyModel.load("smplh", "male", model_dir=model_dir, dtype=F64)
    from amasskit.synth import plan_tree, synth_sequence

    seq = synth_sequence(plan_tree(files=1, lengths="short", seed=3)[0], release="smplh", seed=3)
    joints = model.sequence_joints(seq, chunk=17)
    direct = model.with_shape(seq.betas, dmpls=seq.dmpls).with_pose(
        root_orient=seq.root_orient, pose_body=seq.pose_body, pose_hand=seq.pose_hand, trans=seq.trans
    )
    assert joints.shape == (seq.num_frames, 52, 3)
    assert torch.allclose(joints, direct.joints, atol=1e-10)
    chunks = list(model.sequence_vertices(seq, chunk=25))
    assert [c.shape[0] for c in chunks[:-1]] == [25] * (len(chunks) - 1)
    assert torch.allclose(torch.cat(chunks), direct.vertices, atol=1e-10)
    # the pelvis follows trans + J_pelvis(betas), as AMASS defines it
    pelvis_rest = model.with_shape(seq.betas, dmpls=seq.dmpls).joints_rest[:, 0]
    assert torch.allclose(joints[:, 0], torch.as_tensor(seq.trans) + pelvis_rest, atol=1e-10)


def test_module_adapter_moves_and_differentiates(model_dir: Path) -> None:
    module = BodyModelModule(BodyModel.load("smplx", "female", model_dir=model_dir))
    assert module.get_buffer("v_template").dtype == torch.float32
    module = module.to(F64)
    betas = torch.zeros(2, 16, dtype=F64, requires_grad=True)
    body = torch.zeros(2, 21, 3, dtype=F64, requires_grad=True)
    out = module(
        betas=betas,
        root_orient=torch.zeros(2, 3, dtype=F64),
        pose_body=body,
        expression=torch.zeros(2, 10, dtype=F64),
    )
    assert out["vertices"].dtype == F64 and out["joints"].shape == (2, 55, 3)
    out["vertices"].square().sum().backward()
    assert betas.grad is not None and torch.isfinite(betas.grad).all() and betas.grad.abs().sum() > 0
    assert "vertices" not in module(betas=betas, vertices=False)


def test_missing_model_says_where_and_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMASSKIT_BODY_MODELS", raising=False)
    with pytest.raises(BodyModelNotFoundError) as info:
        find_model_file("smplx", "female", model_dir=tmp_path)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / "smplx" / "SMPLX_FEMALE.npz") in message
    assert (
        "AMASSKIT_BODY_MODELS" in message
        and "smpl-x.is.tue.mpg.de" in message
        and "never downloads" in message
    )
    with pytest.raises(BodyModelNotFoundError, match=r"amass\.is\.tue\.mpg\.de"):
        BodyModel.load("smplh", "male")
    with pytest.raises(BodyModelNotFoundError, match="nowhere"):
        find_model_file("smpl", "neutral")


def test_environment_variable_locates_models(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMASSKIT_BODY_MODELS", str(model_dir))
    assert find_model_file("smplh", "neutral") == model_dir / "smplh" / "neutral" / "model.npz"
    assert BodyModel.load("smplh", "neutral").num_dmpls == 8


def test_broken_model_files(model_dir: Path, tmp_path: Path) -> None:
    source = np.load(model_dir / "smplh" / "male" / "model.npz")
    arrays = {k: source[k] for k in source.files}

    def broken(name: str, **changes: np.ndarray) -> Path:
        path = tmp_path / f"{name}.npz"
        np.savez(path, **{**arrays, **changes})
        return path

    with pytest.raises(BodyModelFileError, match="posedirs must be"):
        load_model_data(broken("posedirs", posedirs=arrays["posedirs"][:, :, :100]))
    with pytest.raises(BodyModelFileError, match="weights must be"):
        load_model_data(broken("weights", weights=arrays["weights"][:, :24]))
    kintree = arrays["kintree_table"].copy()
    kintree[0, 5] = 3
    with pytest.raises(BodyModelFileError, match="do not match the smplh kinematic tree"):
        load_model_data(broken("tree", kintree_table=kintree))
    with pytest.raises(BodyModelFileError, match="30 joints"):
        load_model_data(broken("joints", kintree_table=kintree[:, :30]))
    bad_faces = arrays["f"].copy()
    bad_faces[0, 0] = 99999
    with pytest.raises(BodyModelFileError, match="faces index"):
        load_model_data(broken("faces", f=bad_faces))
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    with pytest.raises(BodyModelFileError, match=r"junk\.npz"):
        load_model_data(tmp_path / "junk.npz")
    del arrays["J_regressor"]
    with pytest.raises(BodyModelFileError, match="no J_regressor"):
        load_model_data(broken("noreg"))


def test_sequence_from_a_real_sample_poses(model_dir: Path, samples: Path) -> None:
    """The real sample's parameters drive the synthetic model: finite joints, pelvis at trans + offset."""
    seq = amasskit.read(samples / "amass_sample.npz", dtype=np.float64)
    model = BodyModel.load("smplh", seq.gender, model_dir=model_dir, dtype=F64)
    joints = model.sequence_joints(seq)
    assert joints.shape == (601, 52, 3) and torch.isfinite(joints).all()


def test_cli_joints_and_mesh(model_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from amasskit.cli import app
    from amasskit.synth import synth_tree

    tree = synth_tree(tmp_path / "tree", files=2, lengths="short", seed=4)
    motion = sorted(tree.root.rglob("*_poses.npz"))[0]
    seq = amasskit.read(motion)
    runner = CliRunner()
    result = runner.invoke(
        app, ["joints", str(motion), "-o", str(tmp_path / "j.npy"), "--model-dir", str(model_dir)]
    )
    assert result.exit_code == 0, result.output
    saved = np.load(tmp_path / "j.npy")
    assert saved.shape == (seq.num_frames, 52, 3) and saved.dtype == np.float32
    model = BodyModel.for_sequence(seq, model_dir=model_dir)
    assert np.allclose(saved, model.sequence_joints(seq).numpy(), atol=1e-5)
    for suffix in ("obj", "ply"):
        out = tmp_path / f"frame.{suffix}"
        result = runner.invoke(
            app, ["mesh", str(motion), "--frame", "-1", "-o", str(out), "--model-dir", str(model_dir)]
        )
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 6890 * 12
        assert (
            f"frame {seq.num_frames - 1} of {seq.num_frames}" in result.output
        )  # -1 said as the frame it is
    lines = (tmp_path / "frame.obj").read_text().splitlines()
    assert (
        sum(line.startswith("v ") for line in lines) == 6890
        and sum(line.startswith("f ") for line in lines) == 13776
    )
    ply = (tmp_path / "frame.ply").read_bytes()
    assert ply.startswith(b"ply\nformat binary_little_endian") and b"element face 13776" in ply
    missing = runner.invoke(
        app, ["joints", str(motion), "-o", str(tmp_path / "x.npy"), "--model-dir", str(tmp_path)]
    )
    assert (
        missing.exit_code == 1
        and "BodyModelNotFoundError" in missing.output
        and "amass.is.tue.mpg.de" in missing.output
    )
    bad = runner.invoke(
        app, ["mesh", str(motion), "-o", str(tmp_path / "x.stl"), "--model-dir", str(model_dir)]
    )
    assert bad.exit_code != 0


def test_betas_the_model_cannot_take_are_an_error_not_cut(model_dir: Path) -> None:
    from amasskit.errors import SequenceError
    from amasskit.synth import plan_tree, synth_sequence

    model = BodyModel.load("smplh", "male", model_dir=model_dir, dtype=F64)
    seq = synth_sequence(plan_tree(files=1, lengths="short", seed=3)[0], release="smplh", seed=3)
    seq = seq.replace(betas=np.concatenate([seq.betas, np.ones(4)]))  # 20 coefficients for a 16-beta model
    with pytest.raises(SequenceError, match="20 shape coefficients"):
        model.sequence_joints(seq)
    fewer = seq.replace(betas=seq.betas[:10])  # fewer: the first ten components, as documented
    assert model.sequence_joints(fewer).shape == (seq.num_frames, 52, 3)
