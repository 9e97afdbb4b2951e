"""amasskit.rotations against independent references (roma, SciPy-free closed forms, plain loops), in numpy and
torch, float32 and float64, with property tests over random rotations and the edge cases at angles 0 and pi."""

from __future__ import annotations

import math

import numpy as np
import pytest
import roma
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from amasskit import rotations as rot
from amasskit.errors import RotationError

DTYPES = (np.float32, np.float64)
TOL = {np.float32: 2e-5, np.float64: 1e-11}


def rotvecs(seed: int = 0, n: int = 500) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(n, 3)) * rng.uniform(0, 6, size=(n, 1))  # angles well past pi, too
    r[:5] = 0.0
    r[5:10] = rng.normal(size=(5, 3)) * 1e-9  # tiny angles take the series branch
    axes = rng.normal(size=(10, 3))
    r[10:20] = axes / np.linalg.norm(axes, axis=-1, keepdims=True) * np.pi  # exactly pi
    return r


def _unit_quats(draw_rotvec: np.ndarray) -> np.ndarray:
    return roma.rotvec_to_unitquat(torch.from_numpy(draw_rotvec)).numpy()


finite = st.floats(-7.0, 7.0, allow_nan=False, allow_subnormal=False)
rotvec_arrays = arrays(np.float64, st.tuples(st.integers(1, 4), st.just(3)), elements=finite)


# ------------------------------------------------------------------------------------------ against roma


def test_conversions_match_roma() -> None:
    r = rotvecs()
    ref = roma.rotvec_to_rotmat(torch.from_numpy(r)).numpy()
    assert np.allclose(rot.rotvec_to_rotmat(r), ref, atol=1e-12)
    q = rot.rotvec_to_quat(r)
    assert np.allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    assert np.allclose(rot.quat_to_rotmat(q), ref, atol=1e-12)
    back = rot.quat_to_rotvec(q)
    assert np.all(np.linalg.norm(back, axis=-1) <= np.pi + 1e-12)
    assert np.allclose(rot.rotvec_to_rotmat(back), ref, atol=1e-12)
    assert np.any(q[:, 3] < 0)  # angles beyond pi: cos(angle / 2) < 0 ...
    assert np.all(
        rot.convert(r, source="rotvec", target="quat")[:, 3] >= 0
    )  # ... which convert canonicalises
    q_from_m = rot.rotmat_to_quat(ref)
    q_ref = roma.rotmat_to_unitquat(torch.from_numpy(ref)).numpy()
    assert np.all(q_from_m[:, 3] >= 0)
    assert np.allclose(np.abs(np.einsum("ij,ij->i", q_from_m, q_ref)), 1.0, atol=1e-12)
    six = rot.rotmat_to_rot6d(ref)
    assert np.array_equal(six[:, :3], ref[:, :, 0]) and np.array_equal(six[:, 3:], ref[:, :, 1])
    gram = roma.special_gramschmidt(torch.from_numpy(six).reshape(-1, 2, 3).transpose(-1, -2)).numpy()
    assert np.allclose(rot.rot6d_to_rotmat(six), gram, atol=1e-12)


def test_quaternion_product_is_composition() -> None:
    a, b = rotvecs(1), rotvecs(2)
    composed = rot.quat_to_rotvec(rot.quat_product(rot.rotvec_to_quat(a), rot.rotvec_to_quat(b)))
    ref = roma.rotvec_composition([torch.from_numpy(a), torch.from_numpy(b)]).numpy()
    assert np.allclose(rot.rotvec_to_rotmat(composed), rot.rotvec_to_rotmat(ref), atol=1e-12)
    # matrices compose the same way: R(a b) = R(a) R(b)
    Ma, Mb = rot.rotvec_to_rotmat(a), rot.rotvec_to_rotmat(b)
    assert np.allclose(rot.rotvec_to_rotmat(composed), Ma @ Mb, atol=1e-12)


def test_slerp_matches_roma_and_ends_at_both_quaternions() -> None:
    rng = np.random.default_rng(4)
    a, b = rot.random_quat(200, rng=rng), rot.random_quat(200, rng=rng)
    t = rng.uniform(size=200)
    ours = rot.quat_slerp(a, b, t)
    ref = roma.unitquat_slerp(
        torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(t), shortest_arc=True
    )
    ref = torch.diagonal(ref, dim1=0, dim2=1).T.numpy() if ref.ndim == 3 else ref.numpy()
    assert np.allclose(rot.quat_angle(ours, ref), 0.0, atol=1e-7)
    assert np.allclose(rot.quat_angle(rot.quat_slerp(a, b, 0.0), a), 0.0, atol=1e-7)
    assert np.allclose(rot.quat_angle(rot.quat_slerp(a, b, 1.0), b), 0.0, atol=1e-7)
    # constant speed: the angle travelled is t times the whole angle
    assert np.allclose(rot.quat_angle(a, ours), t * rot.quat_angle(a, b), atol=1e-9)


def test_geodesic_against_the_definition() -> None:
    rng = np.random.default_rng(5)
    a, b = rot.random_quat(300, rng=rng), rot.random_quat(300, rng=rng, canonical=False)
    plain = 2 * np.arccos(np.clip(np.abs(np.einsum("ij,ij->i", a, b)), 0, 1))
    assert np.allclose(rot.quat_angle(a, b), plain, atol=1e-7)
    Ma, Mb = rot.quat_to_rotmat(a), rot.quat_to_rotmat(b)
    trace = np.einsum("nij,nij->n", Ma, Mb)  # trace(Ma^T Mb)
    assert np.allclose(rot.rotmat_angle(Ma, Mb), np.arccos(np.clip((trace - 1) / 2, -1, 1)), atol=1e-6)
    assert np.allclose(rot.quat_angle(a, -a), 0.0)  # the sign does not matter
    # near zero, where acos loses half the digits, the atan2 form keeps them
    tiny = rot.rotvec_to_quat(np.array([1e-9, 0.0, 0.0]))
    assert math.isclose(float(rot.quat_angle(np.array([0.0, 0, 0, 1]), tiny)), 1e-9, rel_tol=1e-6)


# ------------------------------------------------------------------------------------------ properties


@settings(max_examples=60, deadline=None)
@given(rotvec_arrays, st.sampled_from(DTYPES))
def test_round_trips(r: np.ndarray, dtype: type) -> None:
    r = r.astype(dtype)
    tol = TOL[dtype]
    M = rot.rotvec_to_rotmat(r)
    assert M.dtype == dtype
    assert np.allclose(M @ np.swapaxes(M, -1, -2), np.eye(3), atol=tol * 10)
    for rep in ("quat", "6d", "rotmat"):
        there = rot.convert(r, source="rotvec", target=rep)
        assert there.dtype == dtype
        assert np.allclose(rot.to_rotmat(there, rep), M, atol=tol * 10), rep
        back = rot.convert(there, source=rep, target="rotvec")
        assert np.allclose(rot.rotvec_to_rotmat(back), M, atol=tol * 10), rep
    q = rot.rotvec_to_quat(r)
    assert np.allclose(rot.quat_angle(rot.rotmat_to_quat(M), q), 0.0, atol=math.sqrt(tol) * 10)
    assert np.allclose(rot.quat_exp(rot.quat_log(q)), q, atol=tol * 10)
    assert np.allclose(
        rot.quat_exp(np.asarray(r, np.float64) / 2), rot.rotvec_to_quat(np.asarray(r, np.float64))
    )
    identity = rot.quat_product(q, rot.quat_inverse(q))
    assert np.allclose(identity, [0, 0, 0, 1], atol=tol * 10)
    assert np.all(rot.quat_canonical(-q)[..., 3] >= 0)


@settings(max_examples=40, deadline=None)
@given(rotvec_arrays, st.sampled_from((torch.float32, torch.float64)))
def test_torch_matches_numpy(r: np.ndarray, dtype: torch.dtype) -> None:
    t = torch.from_numpy(r).to(dtype)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    q_np, q_t = rot.rotvec_to_quat(r), rot.rotvec_to_quat(t)
    assert isinstance(q_t, torch.Tensor) and q_t.dtype == dtype
    assert np.allclose(q_t.double().numpy(), q_np, atol=tol)
    M_t = rot.rotvec_to_rotmat(t)
    assert np.allclose(M_t.double().numpy(), rot.rotvec_to_rotmat(r), atol=tol)
    for rep in ("rotvec", "quat", "6d"):
        assert np.allclose(rot.from_rotmat(M_t, rep).double().numpy(), rot.from_rotmat(M_t.double().numpy(), rep),
                           atol=tol * 10), rep  # fmt: skip
    assert np.allclose(rot.quat_log(q_t).double().numpy(), rot.quat_log(q_np), atol=tol)
    half = rot.quat_slerp(q_t, q_t.flip(0), 0.25).double().numpy()
    assert np.allclose(rot.quat_angle(half, rot.quat_slerp(q_np, q_np[::-1], 0.25)), 0.0, atol=math.sqrt(tol))
    six = rot.rotmat_to_rot6d(M_t)
    assert np.allclose(rot.rot6d_to_rotmat(six).double().numpy(), rot.rotvec_to_rotmat(r), atol=tol * 10)
    assert np.allclose(rot.quat_angle(q_t, q_t.flip(0)).double().numpy(), rot.quat_angle(q_np, q_np[::-1]),
                       atol=math.sqrt(tol))  # fmt: skip


def test_edge_angles_zero_and_pi() -> None:
    zero = np.zeros((2, 3))
    assert np.array_equal(rot.rotvec_to_quat(zero), [[0, 0, 0, 1]] * 2)
    assert np.array_equal(rot.quat_to_rotvec(np.array([0.0, 0, 0, 1])), [0, 0, 0])
    assert np.array_equal(rot.quat_to_rotvec(np.array([0.0, 0, 0, -1])), [0, 0, 0])
    assert np.allclose(rot.rotmat_to_rotvec(np.eye(3)), 0.0)
    for axis in np.eye(3):
        M = rot.rotvec_to_rotmat(axis * np.pi)
        back = rot.rotmat_to_rotvec(M)
        assert math.isclose(float(np.linalg.norm(back)), np.pi, rel_tol=1e-12)
        assert np.allclose(np.abs(back), axis * np.pi, atol=1e-12)  # +-axis: both are the same rotation
    # rotations just short of pi, read back from the matrix (the trace is near -1)
    r = np.array([0.3, -0.5, 0.8])
    r *= (np.pi - 1e-7) / np.linalg.norm(r)
    assert np.allclose(rot.rotvec_to_rotmat(rot.rotmat_to_rotvec(rot.rotvec_to_rotmat(r))), rot.rotvec_to_rotmat(r),
                       atol=1e-12)  # fmt: skip


def test_gradients_are_finite_at_the_identity() -> None:
    r = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    loss = rot.rotvec_to_quat(r).sum() + rot.quat_log(rot.rotvec_to_quat(r)).sum() + rot.quat_exp(r).sum()
    (grad,) = torch.autograd.grad(loss, r)
    assert torch.isfinite(grad).all()
    # d/dr of the vector part of exp(r) at 0 is the identity (plus d/dr of log(exp(r/2)) = 1/2 from the first term)
    assert torch.allclose(grad, torch.full_like(grad, 0.5 + 0.5 + 1.0))


def test_any_leading_dims_and_broadcasting() -> None:
    rng = np.random.default_rng(6)
    q = rot.random_quat((2, 3, 4), rng=rng)
    assert q.shape == (2, 3, 4, 4)
    assert rot.quat_to_rotmat(q).shape == (2, 3, 4, 3, 3)
    assert rot.quat_product(q, q[:1, :1]).shape == (2, 3, 4, 4)
    assert rot.quat_angle(q, q[0]).shape == (2, 3, 4)
    assert rot.rotvec_to_quat(np.zeros(3)).shape == (4,)


def test_wxyz_boundary() -> None:
    q = rot.random_quat(5, rng=np.random.default_rng(7))
    wxyz = rot.quat_xyzw_to_wxyz(q)
    assert np.array_equal(wxyz[:, 0], q[:, 3]) and np.array_equal(wxyz[:, 1:], q[:, :3])
    assert np.array_equal(rot.quat_wxyz_to_xyzw(wxyz), q)


def test_haar_sampling_is_uniform() -> None:
    """Haar measure: the rotation angle has density (1 - cos a) / pi on [0, pi], so E[a] = pi/2 + 2/pi, and the
    rotated x axis is uniform on the sphere (mean 0)."""
    q = rot.random_quat(200_000, rng=np.random.default_rng(8))
    assert np.all(q[:, 3] >= 0)
    angle = rot.quat_angle(q, np.array([0.0, 0, 0, 1]))
    assert abs(angle.mean() - (np.pi / 2 + 2 / np.pi)) < 0.01
    assert np.allclose(rot.quat_to_rotmat(q)[:, :, 0].mean(axis=0), 0.0, atol=0.01)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(rot.random_quat(3, rng=g1), rot.random_quat(3, rng=g2))
    with pytest.raises(TypeError):
        rot.random_quat(3, rng=1)


def test_shapes_are_checked() -> None:
    with pytest.raises(
        RotationError, match=r"rotvec_to_quat: rotvec rotations have shape \(\.\.\., 3\), got \(3, 4\)"
    ):
        rot.rotvec_to_quat(np.zeros((3, 4)))
    with pytest.raises(RotationError, match="rotmat"):
        rot.rotmat_to_quat(np.zeros((4, 3)))
    with pytest.raises(RotationError, match="floating-point"):
        rot.quat_to_rotmat(torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(RotationError, match="representation must be one of"):
        rot.to_rotmat(np.zeros(3), "euler")
    with pytest.raises(
        ValueError, match="numpy arrays or both torch tensors"
    ):  # a RotationError is a ValueError
        rot.quat_product(np.zeros(4), torch.zeros(4))


def test_old_import_paths() -> None:
    """What moved in issue 13 is still importable from where it was (see CHANGELOG.md)."""
    import amasskit.prepare
    import amasskit.store
    from amasskit.body import ROTATION_REPRESENTATIONS, ModelKind, from_rotmat, to_rotmat
    from amasskit.conventions import ROTATIONS, ModelType
    from amasskit.sequence import ModelType as SequenceModelType
    from amasskit.store import PrepareConfig, StoreStats, prepare, store_stats
    from amasskit.viz import StoreStats as VizStoreStats
    from amasskit.viz import store_stats as viz_store_stats

    assert to_rotmat is rot.to_rotmat and from_rotmat is rot.from_rotmat
    assert ModelKind is ModelType is SequenceModelType and set(ROTATION_REPRESENTATIONS) == set(ROTATIONS)
    assert prepare is amasskit.prepare.prepare and PrepareConfig is amasskit.prepare.PrepareConfig
    assert viz_store_stats is store_stats and VizStoreStats is StoreStats
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        amasskit.store.nothing  # noqa: B018


def test_the_old_names_of_the_angles_are_the_same_functions() -> None:
    """``*_geodesic`` (before 0.2) are the angle functions themselves, kept for one release."""
    assert rot.quat_geodesic is rot.quat_angle and rot.rotmat_geodesic is rot.rotmat_angle
    assert rot.rotvec_geodesic is rot.rotvec_angle


def test_the_canonical_quaternion_is_one_of_the_pair_and_the_same_for_both() -> None:
    """``quat_canonical(q) == quat_canonical(-q)`` for every quaternion, ties at ``w = 0`` (and at ``x = 0``, ...)
    included, in numpy and torch; ``normalize`` is torch's own ``functional.normalize`` bit for bit; the sign it
    reports is the one it applied."""
    import torch

    rng = np.random.default_rng(5)
    q = rng.normal(size=(64, 4))
    q[:16, 3] = 0.0  # w = 0
    q[:8, 0] = 0.0  # and x = 0
    q[:4, 1] = 0.0  # and y = 0
    for arr in (q, torch.from_numpy(q)):
        a, b = rot.quat_canonical(arr), rot.quat_canonical(-arr)
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert all(
            np.allclose(np.asarray(a)[i], q[i]) or np.allclose(np.asarray(a)[i], -q[i]) for i in range(64)
        )
        sign = np.asarray(rot.quat_canonical_sign(arr))
        assert np.array_equal(np.asarray(a), q * sign[:, None])
    t = torch.from_numpy(q.astype(np.float32) * 3.0)
    unit = rot.quat_canonical(t, normalize=True)
    plain = torch.nn.functional.normalize(t, dim=-1)
    assert torch.equal(unit.abs(), plain.abs()) and torch.allclose(unit.norm(dim=-1), torch.ones(64))
    assert np.allclose(
        rot.quat_canonical(q * 3.0, normalize=True),
        np.asarray(rot.quat_canonical(q)) / np.linalg.norm(q, axis=1, keepdims=True),
    )
