"""The fit's derivatives against plain finite differences of the body model's forward pass.

The gradient must be exact (pose blend shapes included) for the fit to end at the exact minimum; the Gauss-Newton
matrix, built from moments of the rest mesh, must equal ``J^T J`` where it is exact by construction (a model without
pose blend shapes), and its shape block and rotation-shape coupling must match with them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from amasskit.body import BodyModel
from amasskit.convert._fit import (
    FitState,
    TargetModel,
    _apply_step,
    _linearize,
    _moments,
    evaluate,
    frames_last,
)
from amasskit.rotations import rotvec_to_rotmat

F64 = torch.float64


@pytest.fixture(scope="module")
def target(model_dir: Path) -> TargetModel:
    model = BodyModel.load("smplx", "neutral", model_dir=model_dir, dtype=F64, dmpl=False)
    third = np.arange(0, model.num_vertices, 3)  # a third of the vertices keeps the differences quick
    return TargetModel.build(model, third, num_betas=8)


def _numeric_jacobian(
    target: TargetModel, state: FitState, betas: torch.Tensor, goal: torch.Tensor
) -> torch.Tensor:
    """``(B, 3 V, n + S)`` (``goal`` frames last): central differences of the residuals in the fit's own parameters.
    The pose and translation columns are evaluated in one batch (every frame, every column, both signs), the shape
    columns one at a time (the shape is shared by the frames)."""
    ev = evaluate(target, betas, state, goal)
    B, J = state.rel.shape[:2]
    n, eps = 3 * J + 3, 1e-6
    # frame b, column k, sign s at batch row (s * n + k) * B + b
    step = torch.zeros(2, n, B, n, dtype=F64)
    columns = torch.arange(n)
    step[0, columns, :, columns] = eps
    step[1, columns, :, columns] = -eps
    many = FitState(state.rel.repeat(2 * n, 1, 1, 1), state.trans.repeat(2 * n, 1))
    moved = _apply_step(
        many, ev.glob.repeat(2 * n, 1, 1, 1), step.reshape(2 * n * B, n), target.model.parents
    )
    out = evaluate(target, betas, moved, goal.repeat(1, 1, 2 * n)).residual.reshape(2, n, B, -1)
    cols = list(((out[0] - out[1]) / (2 * eps)).unbind(0))  # n of (B, 3 V)
    for k in range(len(betas)):
        signed = []
        for sign in (1.0, -1.0):
            b = betas.clone()
            b[k] += sign * eps
            signed.append(evaluate(target, b, state, goal).residual.reshape(B, -1))
        cols.append((signed[0] - signed[1]) / (2 * eps))
    return torch.stack(cols, -1)


def _case(target: TargetModel) -> tuple[FitState, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    J = target.num_joints
    state = FitState(rotvec_to_rotmat(torch.as_tensor(rng.normal(0, 0.4, (2, J, 3)))),
                     torch.as_tensor(rng.normal(0, 0.5, (2, 3))))  # fmt: skip
    betas = torch.as_tensor(rng.normal(0, 1, target.num_betas))
    noise = torch.as_tensor(rng.normal(0, 0.01, (2, len(target.mask), 3)))
    goal = evaluate(target, betas, state).vertices + noise
    return state, betas, frames_last(goal)


def test_gradient_exact_with_pose_blend_shapes(target: TargetModel) -> None:
    state, betas, goal = _case(target)
    ev = evaluate(target, betas, state, goal)
    lin = _linearize(target, _moments(target, betas), betas, state, ev, shape=True)
    jac = _numeric_jacobian(target, state, betas, goal)
    numeric = (jac.transpose(1, 2) @ ev.residual.reshape(2, -1, 1)).squeeze(-1)
    n = lin.g.shape[1]
    assert lin.h is not None
    assert torch.allclose(lin.g, numeric[:, :n], rtol=1e-6, atol=1e-9 * numeric.abs().max())
    assert torch.allclose(lin.h, numeric[:, n:], rtol=1e-6, atol=1e-9 * numeric.abs().max())


def test_gauss_newton_matrix_exact_without_pose_blend_shapes(target: TargetModel) -> None:
    plain = dataclasses.replace(target, pose_basis=torch.zeros_like(target.pose_basis),
                                pose_gram=torch.zeros_like(target.pose_gram))  # fmt: skip
    state, betas, goal = _case(plain)
    ev = evaluate(plain, betas, state, goal)
    lin = _linearize(plain, _moments(plain, betas), betas, state, ev, shape=True)
    jac = _numeric_jacobian(plain, state, betas, goal)
    full = jac.transpose(1, 2) @ jac
    n = lin.H.shape[1]
    assert lin.C is not None and lin.Hss is not None

    def close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> bool:
        return bool((a.double() - b).norm() <= rtol * b.norm())

    assert close(lin.H, full[:, :n, :n], 1e-6)  # stored in float32
    assert close(lin.C, full[:, :n, n:], 1e-7) and close(lin.Hss, full[:, n:, n:], 1e-7)
    # with pose blend shapes the matrix is an approximation (their cross terms left out), still close
    ev = evaluate(target, betas, state, goal)
    approx = _linearize(target, _moments(target, betas), betas, state, ev, shape=True)
    jac = _numeric_jacobian(target, state, betas, goal)
    assert close(approx.H, (jac.transpose(1, 2) @ jac)[:, :n, :n], 0.01)


def test_moments_equal_plain_sums_over_vertices(target: TargetModel) -> None:
    """The moments from the shape polynomials equal the sums over the shaped rest vertices, pair by pair."""
    betas = torch.as_tensor(np.random.default_rng(1).normal(0, 1.5, target.num_betas))
    got = _moments(target, betas)
    x = torch.cat([target.rest_vertices(betas), torch.ones(len(target.mask), 1, dtype=F64)], 1)  # (V, 4)
    S = len(betas)
    Sv = target.shape_basis.reshape(S, -1, 3).permute(1, 0, 2)  # (V, S, 3)
    Sh = torch.cat([Sv, torch.ones(len(target.mask), S, 1, dtype=F64)], 2)
    W = target.weights
    for p, (m, n) in enumerate(target.pairs.tolist()):
        ww = W[:, m] * W[:, n]
        assert torch.allclose(got.M[p], (ww[:, None] * x).T @ x, rtol=1e-10, atol=1e-12)
        assert torch.allclose(got.T[p], torch.einsum("i,ic,isd->scd", ww, x, Sh), rtol=1e-10, atol=1e-12)
    assert torch.allclose(got.mu, W.T @ x, rtol=1e-10, atol=1e-12)
    assert torch.allclose(got.nu, torch.einsum("vj,vsc->jsc", W, Sh), rtol=1e-10, atol=1e-12)
