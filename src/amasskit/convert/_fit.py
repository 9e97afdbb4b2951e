"""Fitting a body model's parameters to target vertices: batched Levenberg-Marquardt with an analytic Jacobian, and
an exact linear solve for a shape shared by many frames.

Model (see :mod:`amasskit.body`): ``v_i = sum_m w_im (G_m vbar_i + tau_m)``, the rest vertex ``vbar_i = T_i + S_i beta +
P_i f(theta)`` (template, shape and pose blend shapes), ``G_m`` joint ``m``'s global rotation and ``tau_m = p_m -
G_m J_m`` its skinning translation (``p_m`` the posed joint, ``J_m`` the rest joint; the root sits at ``J_0 + t``).

Pose step. Each joint's rotation is updated by a small rotation ``delta_k`` of its whole subtree about its posed joint
``p_k`` (in the output frame), the translation by ``dt``. To first order a vertex moves by ``delta_k x c_ik`` with
``c_ik = u_ik - a_ik p_k``, where ``u_ik = sum_{m in subtree(k)} w_im (G_m vbar_i + tau_m)`` is the part of the vertex
carried by the subtree and ``a_ik`` its skinning weight. So ``dv_i/d delta_k = -[c_ik]x`` and ``dv_i/dt = I``, and
the Gauss-Newton matrix has 3x3 blocks ``sum_i (c_ik . c_il) I - c_il c_ik^T``. A vertex only involves the ancestors of
the joints that skin it, so vertices are grouped by that ancestor set and each group adds one small dense block: the
cost is about 10 k vertices x (3 x 12)^2 per frame, not (3 x 55)^2. The pose blend shapes' own dependence on the
rotations is left out of the Jacobian (it is small next to the lever arms; the residual is always exact, and steps are
accepted only when they lower it). The update ``L_k <- exp([G_parent^T delta_k]x) L_k`` applies ``delta_k`` to the
local rotations. Damping is Marquardt's (``lambda diag(H)``), per frame; a frame stops when its cost no longer falls.

Shape step. With rotations and translations fixed, the vertices are affine in ``beta`` (the shape moves the rest
vertices and, through the joint regressor, the joints and so the skinning translations), so the shape shared by all
frames is one exact linear least-squares solve over all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..body import BodyModel, forward_kinematics
from ..rotations import quat_exp, quat_to_rotmat

__all__ = ["HESSIAN_STRIDE", "FitState", "Posed", "TargetModel", "fit_poses", "fit_shape", "posed_vertices"]

HESSIAN_STRIDE = 4
"""The Gauss-Newton matrix is built from one vertex in this many (of each skinning group); the gradient from all."""


@dataclass(frozen=True, eq=False)
class _Group:
    rows: torch.Tensor  # (Vg,) positions in the masked-vertex list
    joints: torch.Tensor  # (A,) the ancestors of the joints skinning these vertices
    indicator: torch.Tensor  # (Vg, A, K): skinning slot k's joint is in the subtree of joints[a]
    coords: torch.Tensor  # (3A,) positions of the joints' three rotation parameters in the parameter vector


@dataclass(frozen=True, eq=False)
class TargetModel:
    """What the fit needs of the target model, on its masked vertices, prepared once.

    Attributes:
        model: the body model.
        mask: ``(Vm,)`` vertex ids fitted.
        skin_joint, skin_weight: ``(Vm, K)`` the joints skinning each masked vertex and their weights.
        template, shape_basis, pose_basis: the masked rows of ``v_template``, the shape and the pose bases
            (``(Vm, 3)``, ``(S, Vm * 3)``, ``(9 (J - 1), Vm * 3)``).
        groups: the masked vertices grouped by the ancestor set of their skinning joints.
    """

    model: BodyModel
    mask: torch.Tensor
    skin_joint: torch.Tensor
    skin_weight: torch.Tensor
    template: torch.Tensor
    shape_basis: torch.Tensor
    pose_basis: torch.Tensor
    groups: tuple[_Group, ...]
    pose_gram: torch.Tensor  # (J - 1, 9, 9): sum over vertices of P_i^(k)T P_i^(k), per joint k

    @classmethod
    def build(
        cls, model: BodyModel, mask: np.ndarray | None = None, *, num_betas: int | None = None
    ) -> TargetModel:
        V, J = model.num_vertices, model.num_joints
        ids = np.arange(V) if mask is None else np.asarray(mask, dtype=np.int64)
        weights = model.data.weights[ids]
        K = int((weights != 0).sum(axis=1).max())
        order = np.argsort(-np.abs(weights), axis=1, kind="stable")[:, :K]
        skin_weight = np.take_along_axis(weights, order, axis=1)
        skin_joint = np.where(skin_weight != 0, order, 0)
        parents = model.parents
        ancestors = []
        for j in range(J):
            chain, k = [], j
            while k >= 0:
                chain.append(k)
                k = parents[k]
            ancestors.append(frozenset(chain))
        keys: dict[tuple[int, ...], list[int]] = {}
        for row in range(len(ids)):
            joints: set[int] = set()
            for slot in range(K):
                if skin_weight[row, slot] != 0:
                    joints |= ancestors[int(skin_joint[row, slot])]
            keys.setdefault(tuple(sorted(joints)), []).append(row)
        dev, dt = model.device, model.dtype
        groups = []
        for joints_key, rows in keys.items():
            rows_np = np.asarray(rows)
            indicator = np.zeros((len(rows), len(joints_key), K))
            for a, k in enumerate(joints_key):
                for slot in range(K):
                    member = np.array([k in ancestors[int(j)] for j in skin_joint[rows_np, slot]])
                    indicator[:, a, slot] = member & (skin_weight[rows_np, slot] != 0)
            coords = (3 * np.asarray(joints_key)[:, None] + np.arange(3)).reshape(-1)
            groups.append(_Group(torch.as_tensor(rows_np, device=dev), torch.as_tensor(joints_key, device=dev),
                                 torch.as_tensor(indicator, device=dev, dtype=dt),
                                 torch.as_tensor(coords, device=dev)))  # fmt: skip
        S = model.shape_basis.shape[0] if num_betas is None else num_betas
        cols = (3 * torch.as_tensor(ids, device=dev)[:, None] + torch.arange(3, device=dev)).reshape(-1)
        P = model.data.posedirs[ids].reshape(len(ids), 3, J - 1, 9)
        gram = np.einsum("vcjm,vcjn->jmn", P, P)
        return cls(
            model=model,
            mask=torch.as_tensor(ids, device=dev),
            skin_joint=torch.as_tensor(skin_joint, device=dev),
            skin_weight=torch.as_tensor(skin_weight, device=dev, dtype=dt),
            template=model.v_template[ids],
            shape_basis=model.shape_basis[:S][:, cols],
            pose_basis=model.pose_basis[:, cols],
            groups=tuple(groups),
            pose_gram=torch.as_tensor(gram, device=dev, dtype=torch.float64),
        )

    @property
    def num_betas(self) -> int:
        return int(self.shape_basis.shape[0])

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """``(J, 3)`` rest joints for ``betas (S,)``."""
        m = self.model
        assert m.joint_shape_basis is not None  # every SMPL-family model has shape blend shapes
        return m.joint_template + (betas @ m.joint_shape_basis[: len(betas)]).reshape(-1, 3)

    def rest_vertices(self, betas: torch.Tensor) -> torch.Tensor:
        """``(Vm, 3)`` shaped rest vertices (masked)."""
        return self.template + (betas @ self.shape_basis[: len(betas)]).reshape(-1, 3)


@dataclass
class FitState:
    """Per-frame parameters being fitted: ``rel (B, J, 3, 3)`` local rotations, ``trans (B, 3)``."""

    rel: torch.Tensor
    trans: torch.Tensor


@dataclass(frozen=True, eq=False)
class Posed:
    """One forward pass over the masked vertices: ``vertices (B, Vm, 3)``, the per-slot parts ``q (B, Vm, K, 3)``
    (``sum_k q = vertices``), ``glob (B, J, 3, 3)``, posed ``joints (B, J, 3)`` and each vertex's blended rotation
    ``blend (B, Vm, 3, 3) = sum_m w_im G_m``."""

    vertices: torch.Tensor
    q: torch.Tensor
    glob: torch.Tensor
    joints: torch.Tensor
    blend: torch.Tensor


def posed_vertices(
    target: TargetModel, rest: torch.Tensor, joints_rest: torch.Tensor, state: FitState
) -> Posed:
    """The target model's masked vertices for ``state`` with the shaped ``rest (Vm, 3)``, ``joints_rest (J, 3)``."""
    m = target.model
    B = state.rel.shape[0]
    eye = torch.eye(3, device=rest.device, dtype=rest.dtype)
    feature = (state.rel[:, 1:] - eye).reshape(B, -1)
    v_rest = (rest.reshape(1, -1) + feature @ target.pose_basis).reshape(B, -1, 3)
    glob, posed = forward_kinematics(state.rel, joints_rest, m.levels)
    posed = posed + state.trans[:, None, :]
    tau = posed - (glob @ joints_rest[..., None]).squeeze(-1)
    # weighted transforms of each vertex's skinning slots, then element-wise products (tiny batched 3x3 matmuls
    # measured several times slower)
    w = target.skin_weight[None, :, :, None, None]
    T = torch.cat([glob, tau[..., None]], dim=-1)[:, target.skin_joint] * w  # (B, Vm, K, 3, 4)
    x, y, z = v_rest[:, :, None, None, 0], v_rest[:, :, None, None, 1], v_rest[:, :, None, None, 2]
    q = T[..., 0] * x + T[..., 1] * y + T[..., 2] * z + T[..., 3]  # (B, Vm, K, 3)
    blend = T[..., :3].sum(2)
    return Posed(q.sum(2), q, glob, posed, blend)


def _normal_equations(
    target: TargetModel, fwd: Posed, rel: torch.Tensor, residual: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Newton ``H (B, n, n)`` (of the rigid part of the Jacobian) and the exact gradient ``g (B, n)`` (the pose
    blend shapes' part included) over ``n = 3 J + 3`` parameters (rotations, then the translation), in float64."""
    q, posed = fwd.q, fwd.joints
    B, J = q.shape[0], target.model.num_joints
    n = 3 * J + 3
    H = torch.zeros(B, n * n, device=q.device, dtype=torch.float64)
    g = torch.zeros(B, n, device=q.device, dtype=torch.float64)
    eye = torch.eye(3, device=q.device, dtype=torch.float64)
    t_slice = slice(3 * J, n)
    for group in target.groups:
        A = len(group.joints)
        qg = q[:, group.rows]
        w = target.skin_weight[group.rows]
        u = torch.einsum("vak,bvkc->bvac", group.indicator, qg)
        a = torch.einsum("vak,vk->va", group.indicator, w)
        c = u - a[None, :, :, None] * posed[:, group.joints][:, None]  # (B, Vg, A, 3)
        r = residual[:, group.rows]
        grad = torch.linalg.cross(c, r[:, :, None, :].expand_as(c)).double().sum(1)  # (B, A, 3)
        # H only steers the steps (the gradient above is exact, so the fit still ends at the exact minimum): it is
        # built in the working precision from every HESSIAN_STRIDE-th vertex of the group, scaled up
        sub = c[:, ::HESSIAN_STRIDE]
        flat = sub.reshape(B, -1, 3 * A)
        N = ((flat.transpose(1, 2) @ flat).double() * (c.shape[1] / max(sub.shape[1], 1))).reshape(
            B, A, 3, A, 3
        )
        dots = torch.diagonal(N, dim1=2, dim2=4).sum(-1)  # (B, A, A)
        block = dots[..., None, None] * eye - N.permute(0, 1, 3, 4, 2)  # (B, A, A, 3, 3): [s, t][c, d]
        block = block.permute(0, 1, 3, 2, 4).reshape(B, 3 * A, 3 * A)
        idx = group.coords
        H.index_add_(1, (idx[:, None] * n + idx[None, :]).reshape(-1), block.reshape(B, -1))
        csum = c.double().sum(1)  # (B, A, 3): rotation-translation coupling [sum c]x
        cross = _skew(csum).reshape(B, 3 * A, 3)
        t_idx = torch.arange(3 * J, n, device=q.device)
        H.index_add_(1, (idx[:, None] * n + t_idx[None, :]).reshape(-1), cross.reshape(B, -1))
        H.index_add_(1, (t_idx[:, None] * n + idx[None, :]).reshape(-1), cross.transpose(1, 2).reshape(B, -1))
        g.index_add_(1, idx, grad.reshape(B, -1))
    H = H.reshape(B, n, n)
    H[:, t_slice, t_slice] += residual.shape[1] * eye
    g[:, t_slice] += residual.double().sum(1)
    # the pose blend shapes: joint k's features f_k = vec(L_k - I) move with delta_k as
    # d vec(L_k) / d delta_k[a] = vec([G_parent^T e_a]x L_k); the rest-vertex change reaches the output through the
    # blended rotation, so the gradient gains F_k^T P^(k)T (blend^T r), one product with the pose basis
    s_ = (fwd.blend.transpose(-1, -2) @ residual[..., None]).squeeze(-1)  # (B, Vm, 3)
    z = (s_.reshape(B, -1) @ target.pose_basis.T).double().reshape(B, J - 1, 9)
    parents = torch.as_tensor(target.model.parents[1:], device=q.device)
    rows = fwd.glob[:, parents].double()  # (B, J-1, 3, 3): row a is G_parent^T e_a
    F = (_skew(rows) @ rel[:, 1:, None].double()).reshape(B, J - 1, 3, 9)  # [a] -> vec
    g[:, 3 : 3 * J] += torch.einsum("bjn,bjan->bja", z, F).reshape(B, -1)
    # and the matrix its own diagonal blocks: F_k^T (sum_i P_i^(k)T P_i^(k)) F_k, taking each vertex's blended
    # rotation as orthonormal (it is a weighted mean of rotations), the cross terms left out
    diag_blocks = F @ target.pose_gram @ F.transpose(-1, -2)  # (B, J-1, 3, 3)
    k = torch.arange(3, 3 * J, device=q.device).reshape(J - 1, 3)
    flat = (k[:, :, None] * n + k[:, None, :]).reshape(-1)
    H.view(B, -1).index_add_(1, flat, diag_blocks.reshape(B, -1))
    return H, g


def _skew(v: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` -> ``(..., 3, 3)`` with ``[v]x w = v x w``."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(*v.shape, 3)


def _apply_step(
    state: FitState, glob: torch.Tensor, step: torch.Tensor, parents: tuple[int, ...]
) -> FitState:
    """New parameters after a step ``(B, 3 J + 3)``: subtree rotations about the posed joints, and a translation."""
    B, J = state.rel.shape[:2]
    delta = step[:, : 3 * J].reshape(B, J, 3).to(state.rel.dtype)
    parent_glob = torch.cat(
        [
            torch.eye(3, device=glob.device, dtype=glob.dtype).expand(B, 1, 3, 3),
            glob[:, [max(p, 0) for p in parents[1:]]],
        ],
        dim=1,
    )
    local = (parent_glob.transpose(-1, -2) @ delta[..., None]).squeeze(-1)  # delta in the parent's frame
    R = quat_to_rotmat(quat_exp(local / 2))  # exp([local]x)
    return FitState(R @ state.rel, state.trans + step[:, 3 * J :].to(state.trans.dtype))


def fit_poses(
    target: TargetModel,
    betas: torch.Tensor,
    goal: torch.Tensor,
    state: FitState,
    *,
    max_iterations: int = 30,
    tolerance: float = 1e-7,
) -> tuple[FitState, torch.Tensor, torch.Tensor]:
    """Fit rotations and translation of every frame to ``goal (B, Vm, 3)`` with the shape ``betas (S,)`` fixed.

    Returns:
        The fitted state, ``cost (B,)`` (mean squared vertex error, m^2) and ``iterations (B,)``.
    """
    rest, joints_rest = target.rest_vertices(betas), target.rest_joints(betas)
    parents = target.model.parents
    B = goal.shape[0]
    fwd = posed_vertices(target, rest, joints_rest, state)
    glob = fwd.glob
    residual = fwd.vertices - goal
    cost = residual.double().pow(2).sum((1, 2))
    H, g = _normal_equations(target, fwd, state.rel, residual)
    lam = torch.full((B,), 1e-3, device=goal.device, dtype=torch.float64)
    iterations = torch.zeros(B, dtype=torch.long, device=goal.device)
    active = torch.ones(B, dtype=torch.bool, device=goal.device)
    for _ in range(max_iterations):
        idx = torch.nonzero(active).squeeze(1)
        if idx.numel() == 0:
            break
        Ha, ga = H[idx], g[idx]
        diag = torch.diagonal(Ha, dim1=1, dim2=2)
        scale = diag.mean(1, keepdim=True).clamp_min(1e-30)
        damped = Ha + torch.diag_embed(lam[idx, None] * diag + 1e-12 * scale)
        step = _solve_spd(damped, ga)
        sub = FitState(state.rel[idx], state.trans[idx])
        candidate = _apply_step(sub, glob[idx], step, parents)
        fwd_c = posed_vertices(target, rest, joints_rest, candidate)
        res_c = fwd_c.vertices - goal[idx]
        cost_c = res_c.double().pow(2).sum((1, 2))
        better = cost_c < cost[idx]
        iterations[idx] += 1
        if better.any():
            take = idx[better]
            kept = Posed(*(getattr(fwd_c, f)[better] for f in ("vertices", "q", "glob", "joints", "blend")))
            H_c, g_c = _normal_equations(target, kept, candidate.rel[better], res_c[better])
            state.rel[take] = candidate.rel[better]
            state.trans[take] = candidate.trans[better]
            glob[take] = kept.glob
            H[take], g[take] = H_c, g_c
            gain = (cost[take] - cost_c[better]) / cost[take].clamp_min(1e-300)
            cost[take] = cost_c[better]
            lam[take] = (lam[take] / 3).clamp_min(1e-9)
            done = (gain < tolerance) | (step[better].abs().amax(1) < 1e-9)
            active[take[done]] = False
        worse = idx[~better]
        lam[worse] = lam[worse] * 4
        active[worse[lam[worse] > 1e6]] = False  # no step lowers the cost: a minimum (to rounding)
    return state, cost / goal.shape[1], iterations


def _solve_spd(A: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``-A^{-1} g`` for damped Gauss-Newton matrices (symmetric positive definite) by Cholesky; a frame whose
    matrix fails to factor takes no step."""
    L, info = torch.linalg.cholesky_ex(A)
    ok = info == 0
    step = torch.zeros_like(g)
    if ok.any():
        step[ok] = -torch.cholesky_solve(g[ok, :, None], L[ok]).squeeze(-1)
    return step


def shape_jacobian(target: TargetModel, glob: torch.Tensor, num_betas: int) -> torch.Tensor:
    """``(B, Vm * 3, S)``: d vertices / d betas for fixed rotations and translation (exact: the model is affine in
    the shape there)."""
    m = target.model
    B, J = glob.shape[:2]
    S = num_betas
    assert m.joint_shape_basis is not None
    JS = m.joint_shape_basis[:S].reshape(S, J, 3).permute(1, 2, 0)  # (J, 3, S)
    dp = torch.empty(B, J, 3, S, device=glob.device, dtype=glob.dtype)
    dp[:, 0] = JS[0]
    for joints, parents in m.levels:
        bone = (JS[joints] - JS[parents])[None]  # (1, n, 3, S)
        dp[:, joints] = dp[:, parents] + glob[:, parents] @ bone
    dtau = dp - glob @ JS[None]  # (B, J, 3, S)
    Sv = target.shape_basis[:S].reshape(S, -1, 3).permute(1, 2, 0)  # (Vm, 3, S)
    out = torch.zeros(B, Sv.shape[0], 3, S, device=glob.device, dtype=glob.dtype)
    for slot in range(target.skin_joint.shape[1]):
        joint = target.skin_joint[:, slot]
        w = target.skin_weight[:, slot][None, :, None, None]
        out += w * (glob[:, joint] @ Sv[None] + dtau[:, joint])
    return out.reshape(B, -1, S)


def fit_shape(
    target: TargetModel,
    betas: torch.Tensor,
    goals: list[torch.Tensor],
    states: list[FitState],
    *,
    ridge: float = 1e-8,
) -> torch.Tensor:
    """The shape shared by every frame of ``states`` (chunks of one sequence) that best fits ``goals``: one exact
    linear least-squares solve (normal equations accumulated over all chunks, in float64)."""
    S = len(betas)
    A = torch.zeros(S, S, dtype=torch.float64, device=betas.device)
    b = torch.zeros(S, dtype=torch.float64, device=betas.device)
    rest, joints_rest = target.rest_vertices(betas), target.rest_joints(betas)
    for goal, state in zip(goals, states, strict=True):
        fwd = posed_vertices(target, rest, joints_rest, state)
        Jb = shape_jacobian(target, fwd.glob, S).double()
        r = (goal - fwd.vertices).double().reshape(goal.shape[0], -1)
        A += torch.einsum("bvs,bvt->st", Jb, Jb)
        b += torch.einsum("bvs,bv->s", Jb, r)
    A += ridge * torch.trace(A).clamp_min(1e-30) / S * torch.eye(S, dtype=torch.float64, device=betas.device)
    return betas + torch.linalg.solve(A, b).to(betas.dtype)
