"""Synthetic body-model files: the real keys and shapes, a sound humanoid mesh, consistent joints and weights."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

from amasskit import Gender
from amasskit.synth import (
    BODY_MODEL_SIZES,
    body_model_arrays,
    dmpl_arrays,
    humanoid_joints,
    write_body_models,
)
from amasskit.topology import SMPLH_PARENTS, SMPLX_PARENTS

REAL_SHAPES = {
    "smplh": {"v_template": (6890, 3), "f": (13776, 3), "shapedirs": (6890, 3, 16), "posedirs": (6890, 3, 459),
              "J_regressor": (52, 6890), "kintree_table": (2, 52), "weights": (6890, 52)},
    "smplx": {"v_template": (10475, 3), "f": (20908, 3), "shapedirs": (10475, 3, 400), "posedirs": (10475, 3, 486),
              "J_regressor": (55, 10475), "kintree_table": (2, 55), "weights": (10475, 55),
              "hands_componentsl": (45, 45), "hands_componentsr": (45, 45), "hands_meanl": (45,), "hands_meanr": (45,),
              "lmk_faces_idx": (51,), "lmk_bary_coords": (51, 3), "dynamic_lmk_faces_idx": (79, 17),
              "dynamic_lmk_bary_coords": (79, 17, 3)},
}  # fmt: skip


@pytest.fixture(scope="module", params=["smplh", "smplx"])
def model(request: pytest.FixtureRequest) -> tuple[str, dict[str, np.ndarray]]:
    return request.param, body_model_arrays(request.param, "female", seed=0)


def test_real_keys_and_shapes(model: tuple[str, dict[str, np.ndarray]]) -> None:
    name, arrays = model
    assert {k: v.shape for k, v in arrays.items()} == REAL_SHAPES[name]
    assert arrays["v_template"].dtype == np.float64 and arrays["f"].dtype.kind == "i"


def test_kinematic_tree(model: tuple[str, dict[str, np.ndarray]]) -> None:
    name, arrays = model
    parents = SMPLH_PARENTS if name == "smplh" else SMPLX_PARENTS
    kintree = arrays["kintree_table"]
    assert list(kintree[1]) == list(range(len(parents)))
    assert list(kintree[0, 1:]) == list(parents[1:])


def test_regressor_recovers_the_humanoid_joints(model: tuple[str, dict[str, np.ndarray]]) -> None:
    """J_regressor @ v_template is the template's joints; its rows are convex combinations."""
    name, arrays = model
    regressor = arrays["J_regressor"]
    assert np.allclose(regressor.sum(axis=1), 1.0) and (regressor >= 0).all()
    assert np.allclose(regressor @ arrays["v_template"], humanoid_joints(name, "female"), atol=1e-12)  # type: ignore[arg-type]


def test_skinning_weights(model: tuple[str, dict[str, np.ndarray]]) -> None:
    _, weights = model[0], model[1]["weights"]
    assert np.allclose(weights.sum(axis=1), 1.0) and (weights >= 0).all()
    assert (weights.max(axis=1) >= 0.5).all()  # every vertex mostly follows one joint
    assert (weights.sum(axis=0) > 0).all()  # every joint moves some vertices


def test_mesh_is_sound(model: tuple[str, dict[str, np.ndarray]]) -> None:
    """Every vertex used, no degenerate face, consistent orientation; SMPL+H is closed, SMPL-X is open only at the
    mouth."""
    name, arrays = model
    faces = arrays["f"]
    assert len(np.unique(faces)) == BODY_MODEL_SIZES[name].vertices
    assert all(len(set(tri)) == 3 for tri in faces.tolist())
    directed = collections.Counter((int(t[i]), int(t[(i + 1) % 3])) for t in faces for i in range(3))
    assert max(directed.values()) == 1  # no edge used twice in the same direction: consistent orientation
    boundary = [e for e in directed if (e[1], e[0]) not in directed]
    if name == "smplh":
        assert boundary == []
    else:
        mouth = arrays["v_template"][np.array(boundary).ravel()]
        assert 0 < len(boundary) < 60
        assert np.linalg.norm(mouth - humanoid_joints("smplx")[15], axis=1).max() < 0.2


def test_humanoid_proportions() -> None:
    """A person about 1.6-1.8 m tall, standing on its feet, arms out (T-pose), women slightly smaller."""
    for gender in Gender:
        v = body_model_arrays("smplh", gender)["v_template"]
        height = v[:, 1].max() - v[:, 1].min()
        assert 1.55 < height < 1.85, gender
        assert 1.3 < v[:, 0].max() - v[:, 0].min() < 1.8  # arm span
    male = humanoid_joints("smplh", "male")
    female = humanoid_joints("smplh", "female")
    assert male[15, 1] - male[7, 1] > female[15, 1] - female[7, 1]


def test_shape_blend_shapes_change_height_not_joint_consistency() -> None:
    arrays = body_model_arrays("smplh", "male")
    betas = np.zeros(16)
    betas[0] = 2.0
    shaped = arrays["v_template"] + arrays["shapedirs"] @ betas
    assert np.ptp(shaped[:, 1]) > np.ptp(arrays["v_template"][:, 1]) * 1.05
    assert np.abs(arrays["shapedirs"]).max() < 0.2


def test_dmpl_eigvec_shape() -> None:
    eigvec = dmpl_arrays("male")["eigvec"]
    assert eigvec.shape == (6890, 3, 8)
    assert np.abs(eigvec).max() > 0


def test_write_body_models_layout_and_determinism(tmp_path: Path) -> None:
    written = write_body_models(tmp_path / "a", models=("smplh",), genders=(Gender.MALE,), hand_pca=True)
    names = sorted(str(p.relative_to(tmp_path / "a")) for p in written)
    assert names == ["dmpls/male/model.npz", "smplh/male/model.npz"]
    again = write_body_models(tmp_path / "b", models=("smplh",), genders=(Gender.MALE,), hand_pca=True)
    for p, q in zip(written, again, strict=True):
        assert p.read_bytes() == q.read_bytes()
    with np.load(tmp_path / "a" / "smplh" / "male" / "model.npz", allow_pickle=False) as raw:
        assert "hands_componentsl" in raw.files and "amasskit_meta" in raw.files
