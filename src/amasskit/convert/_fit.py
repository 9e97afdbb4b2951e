"""Fitting a body model's parameters to target vertices: Levenberg-Marquardt over the poses of every frame and the one
shape they share, with an exact gradient and a Gauss-Newton matrix from per-joint moments.

Model (see :mod:`amasskit.body`): ``v_i = sum_m w_im A_m [vbar_i; 1]`` with ``A_m = [G_m | tau_m]`` joint ``m``'s
global rotation and skinning translation (``tau_m = p_m - G_m J_m``, ``p_m`` the posed joint, ``J_m`` the rest joint;
the root sits at ``J_0 + t``) and the rest vertex ``vbar_i = T_i + S_i beta + P_i f(theta)`` (template, shape and
pose blend shapes).

Parameters. Each joint's rotation is updated by a small rotation ``delta_k`` of its whole subtree about its posed
joint ``p_k`` (in the output frame), the translation by ``dt``, the shape by ``dbeta``. To first order a vertex moves
by ``delta_k x c_ik`` with ``c_ik = sum_{m in subtree(k)} w_im (A_m [vbar_i; 1] - p_k)``, by ``dt``, and by
``u_is = sum_m w_im (G_m S_is + dtau_ms)`` per shape coefficient. The update ``L_k <- exp([G_parent^T delta_k]x) L_k``
applies ``delta_k`` to the local rotations.

Gradient (exact, pose blend shapes included). ``sum_i c_ik x r_i`` needs only the per-joint moments
``E_m = sum_i w_im [vbar_i; 1] r_i^T`` (one product of the skinning weights with the vertices): it is the axial vector
of ``A_m E_m`` minus ``p_k x E_m[3]``, summed over the subtree. The pose blend shapes add ``F_k^T P^(k)T (B_i^T r_i)``
(``B_i`` the vertex's blended rotation), the shape ``S_i^T B_i^T r_i`` and ``dtau_m^T E_m[3]``: products with the
pose and shape bases. So the fit ends at the exact minimum of the squared vertex error. (On a CPU with AVX512-BF16 a
float32 fit takes the pose-blend term's product in bfloat16, 4x faster: an error ``e`` in the gradient moves the
minimum by ``H^-1 e`` and costs only ``e^T H^-1 e / 2``; measured, the same error to 0.001 mm.)

Layout and cost. Per-vertex arrays keep the frames last (``(Vm, 3, B)``), so the pose-blend and skinning products
are single matrix products; the vertices are ordered in blocks skinned by few joints (the hands, the feet: see
:func:`_skin_blocks`), which halves the skinning products; the rest mesh's moments are polynomials in the shape,
precomputed per model; and the large temporaries live in reused buffers (:class:`Scratch`). Per frame, 4 iterations
measured about 7.5 ms on one CPU core, a quarter of it the pose-blend product of the 5 forward passes.

Gauss-Newton matrix (it only steers the steps). With the rest vertices taken without pose blend shapes, every block is
a contraction of per-frame transforms with moments of the rest mesh computed once per fit: ``M_mn = sum_i w_im w_in
x_i x_i^T`` over the pairs of joints that share a vertex (``x_i = [vbar_i; 1]``) for the rotations, ``T_mn =
sum_i w_im w_in x_i [S_is; 1]^T`` for the rotation-shape coupling, ``sum_i w_im w_in S_is S_it^T`` (fixed) for the
shape block; subtree sums are one sparse product. Its cost does not grow with the number of vertices, and it is exact
for a model without pose blend shapes (tested against finite differences). The pose blend shapes add their diagonal
blocks ``F_k^T (sum_i P_i^(k)T P_i^(k)) F_k``. Damping is Marquardt's with a floor of :data:`DAMPING_FLOOR` of the
mean curvature: directions the matrix hardly sees (finger rotations, whose lever arms can be as short as their pose
blend shapes are large) take short steps, which also keeps the fit in the basin of its start (the source pose
copied through the joint map); measured, a lower floor converged faster to a worse minimum.

Shared shape. The shape couples all frames of a sequence; a step eliminates every frame's pose block (the Schur
complement), solves the small shape system, and substitutes back, so poses and shape move together (alternating them
converges slowly: the pose compensates the shape). Frames are evaluated in chunks; each frame keeps its normal
equations and factors (float32, about 0.25 MB for SMPL-X) between iterations. The matrix is built for the first
:data:`MATRIX_BUILDS` linearizations and then kept, with its factors, under the lower floor :data:`KEPT_FLOOR`; the
gradient stays exact at every point. Without a shape to fit, frames are independent: each has its own damping,
accepts its own steps and stops on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._util.hardware import cpu_has_fast_bf16
from ..body import BodyModel, forward_kinematics
from ..rotations import quat_exp, quat_to_rotmat

logger = logging.getLogger(__name__)

__all__ = [
    "DAMPING_FLOOR",
    "KEPT_FLOOR",
    "MATRIX_BUILDS",
    "FitResult",
    "FitState",
    "Scratch",
    "TargetModel",
    "evaluate",
    "fit",
    "frames_last",
]

DAMPING_FLOOR = 1e-3
"""Every parameter's damping is at least this fraction of the mean curvature (see the module docstring)."""

MATRIX_BUILDS = 3
"""With a shared shape, the Gauss-Newton matrix is built at the start and after each of the first two steps; later
steps reuse it, its damping and its factors, with the exact gradient of each new point, so the fit still ends at the
exact minimum."""

KEPT_FLOOR = 2e-4
"""The damping floor once the matrix is kept: by then the fit is in its basin, and the fingers may move faster
(measured on the benchmark, 4 iterations: +0.046 mm at 103 frames/s, against +0.055 mm at 94 frames/s for 5
iterations with two builds and the first floor throughout)."""


@dataclass(frozen=True, eq=False)
class TargetModel:
    """What the fit needs of the target model, on its masked vertices, prepared once.

    Attributes:
        model: the body model.
        mask: ``(Vm,)`` vertex ids fitted.
        weights: ``(Vm, J)`` their skinning weights.
        skin_joint, skin_weight: ``(Vm, K)`` the joints skinning each masked vertex (dominant first) and weights.
        template, shape_basis, pose_basis: the masked rows of ``v_template``, the shape and the pose bases
            (``(Vm, 3)``, ``(S, Vm * 3)``, ``(9 (J - 1), Vm * 3)``).
        joint_template, joint_shape_basis: ``(J, 3)`` and ``(J, 3, S)`` rest joints and their shape dependence.
        descendants: ``(J, J)`` ``[k, m] = 1`` where ``m`` is ``k`` or below it (working precision).
        pairs: ``(P, 2)`` the ordered pairs of joints that skin a common vertex; ``pair_of_slots (Vm, K, K)`` the
            pair of each vertex's two skinning slots.
        pose_gram: ``(J - 1, 9, 9)`` ``sum_i P_i^(k)T P_i^(k)`` per joint ``k``.
        shape_pairs: ``(P, S, S, 3, 3)`` ``sum_i w_im w_in S_is S_it^T`` per pair (the shape block's moments).
        subtree_pairs: sparse ``(J * J, P)``, ``[(k, l), p] = 1`` where pair ``p = (m, n)`` has ``m`` in the subtree
            of ``k`` and ``n`` in that of ``l`` (sums over subtrees as one sparse product).
        skin_blocks: ``(start, end, joints (J_b,), weights (end - start, J_b))``: consecutive runs of the masked
            vertices and the only joints that skin them (see :func:`_skin_blocks`); the skinning products are taken
            block by block.
        rest_moments: the rest mesh's pair moments as polynomials in the shape (see :class:`_RestMoments`).
        pose_basis_bf16: the pose basis in bfloat16 for the gradient's pose-blend term, where that product is fast
            (a float32 fit on a CPU with AVX512-BF16: 4x the float32 product); else None. See :func:`_linearize`.
    """

    model: BodyModel
    mask: torch.Tensor
    weights: torch.Tensor
    skin_joint: torch.Tensor
    skin_weight: torch.Tensor
    template: torch.Tensor
    shape_basis: torch.Tensor
    pose_basis: torch.Tensor
    joint_template: torch.Tensor
    joint_shape_basis: torch.Tensor
    descendants: torch.Tensor
    pairs: torch.Tensor
    pair_of_slots: torch.Tensor
    pose_gram: torch.Tensor
    subtree_pairs: torch.Tensor
    shape_pairs: torch.Tensor
    rest_moments: _RestMoments
    skin_blocks: tuple[tuple[int, int, torch.Tensor, torch.Tensor], ...] = ()
    pose_basis_bf16: torch.Tensor | None = None

    @classmethod
    def build(
        cls, model: BodyModel, mask: np.ndarray | None = None, *, num_betas: int | None = None
    ) -> TargetModel:
        V, J = model.num_vertices, model.num_joints
        ids = np.arange(V) if mask is None else np.asarray(mask, dtype=np.int64)
        descendants = _descendants(model.parents)
        # the vertices reordered into blocks skinned by few joints (their order is the fit's own: every array of
        # the fit, and the mask, follow it)
        blocks = _skin_blocks(model.data.weights[ids] != 0, descendants.astype(bool), model.parents)
        ids = ids[np.concatenate([rows for rows, _ in blocks])]
        weights = model.data.weights[ids]
        K = int((weights != 0).sum(axis=1).max())
        order = np.argsort(-np.abs(weights), axis=1, kind="stable")[:, :K]
        skin_weight = np.take_along_axis(weights, order, axis=1)
        skin_joint = np.where(skin_weight != 0, order, 0)
        key = skin_joint[:, :, None] * J + skin_joint[:, None, :]
        unique, inverse = np.unique(key, return_inverse=True)
        dev, dt = model.device, model.dtype
        skin_blocks, start = [], 0
        for rows, joints in blocks:
            end = start + len(rows)
            jt = torch.as_tensor(joints, device=dev)
            skin_blocks.append(
                (start, end, jt, torch.as_tensor(weights[start:end][:, joints], device=dev, dtype=dt))
            )
            start = end
        S = model.shape_basis.shape[0] if num_betas is None else num_betas
        cols = (3 * torch.as_tensor(ids, device=dev)[:, None] + torch.arange(3, device=dev)).reshape(-1)
        P = model.data.posedirs[ids].reshape(len(ids), 3, J - 1, 9)
        assert model.joint_shape_basis is not None  # every SMPL-family model has shape blend shapes
        subtree_pairs = _subtree_pairs(descendants, unique // J, unique % J, device=dev, dtype=dt)
        Sv = model.data.shapedirs[ids][:, :, :S].transpose(0, 2, 1).astype(np.float64)  # (Vm, S, 3)
        T0 = np.asarray(model.data.v_template[ids], dtype=np.float64)  # (Vm, 3)
        rest_moments = _rest_moments(
            weights, skin_weight, inverse.reshape(key.shape), len(unique), T0, Sv, device=dev
        )
        shape_pairs = rest_moments.shape_outer
        return cls(
            model=model,
            mask=torch.as_tensor(ids, device=dev),
            weights=torch.as_tensor(weights, device=dev, dtype=dt),
            skin_joint=torch.as_tensor(skin_joint, device=dev),
            skin_weight=torch.as_tensor(skin_weight, device=dev, dtype=dt),
            template=model.v_template[ids],
            shape_basis=model.shape_basis[:S][:, cols],
            pose_basis=model.pose_basis[:, cols],
            joint_template=model.joint_template,
            joint_shape_basis=model.joint_shape_basis[:S].reshape(S, J, 3).permute(1, 2, 0).contiguous(),
            descendants=torch.as_tensor(descendants, device=dev, dtype=dt),
            pairs=torch.as_tensor(np.stack([unique // J, unique % J], 1), device=dev),
            pair_of_slots=torch.as_tensor(inverse.reshape(key.shape), device=dev),
            pose_gram=torch.as_tensor(_pose_gram(P), device=dev, dtype=dt),
            subtree_pairs=subtree_pairs,
            shape_pairs=shape_pairs.to(dt),
            rest_moments=rest_moments,
            skin_blocks=tuple(skin_blocks),
            pose_basis_bf16=model.pose_basis[:, cols].to(torch.bfloat16) if _fast_bf16(dt, dev) else None,
        )

    @property
    def num_betas(self) -> int:
        return int(self.shape_basis.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.weights.shape[1])

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """``(J, 3)`` rest joints for ``betas (S,)``."""
        return self.joint_template + self.joint_shape_basis[..., : len(betas)] @ betas

    def rest_vertices(self, betas: torch.Tensor) -> torch.Tensor:
        """``(Vm, 3)`` shaped rest vertices (masked)."""
        return self.template + (betas @ self.shape_basis[: len(betas)]).reshape(-1, 3)


def _fast_bf16(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether a float32 fit on ``device`` takes the gradient's pose-blend product in bfloat16 (CPUs with
    AVX512-BF16 only: elsewhere the product is emulated and slower, and on CUDA the float32 one is fast already)."""
    return dtype == torch.float32 and torch.device(device).type == "cpu" and cpu_has_fast_bf16()


def _pose_gram(posedirs: np.ndarray) -> np.ndarray:
    """``(J - 1, 9, 9)``: each joint's Gram matrix of its pose blend shapes over the vertices and coordinates,
    ``sum_vc P[v, c, j, m] P[v, c, j, n]`` for ``posedirs (V, 3, J - 1, 9)``, as batched matrix products (einsum took
    0.3 s on SMPL-X)."""
    per_joint = posedirs.reshape(-1, posedirs.shape[2], 9).transpose(1, 0, 2)  # (J - 1, 3 V, 9)
    return per_joint.transpose(0, 2, 1) @ per_joint


def _descendants(parents: Sequence[int] | np.ndarray) -> np.ndarray:
    """``(J, J)`` 0/1: ``[k, m] = 1`` where joint ``m`` is ``k`` or below it in the tree (``parents[0] = -1``)."""
    J = len(parents)
    descendants = np.zeros((J, J))
    for m in range(J):
        k = m
        while k >= 0:
            descendants[k, m] = 1.0
            k = parents[k]
    return descendants


def _subtree_pairs(
    descendants: np.ndarray, pm: np.ndarray, pn: np.ndarray, *, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Sparse ``(J * J, P)``: row ``k J + l`` sums the pairs ``(m_p, n_p)`` of joints with ``m_p`` at or below ``k``
    and ``n_p`` at or below ``l`` (the subtree sums over both joints of every pair, one product)."""
    J = len(descendants)
    kk, pp_k = np.nonzero(descendants[:, pm])  # k above (or at) m_p
    rows_e, cols_e = [], []
    for k, pair in zip(kk.tolist(), pp_k.tolist(), strict=True):
        ls = np.flatnonzero(descendants[:, pn[pair]])
        rows_e.append(k * J + ls)
        cols_e.append(np.full(len(ls), pair))
    index = torch.as_tensor(np.stack([np.concatenate(rows_e), np.concatenate(cols_e)]), device=device)
    return torch.sparse_coo_tensor(
        index, torch.ones(index.shape[1], dtype=dtype, device=device), (J * J, len(pm)), check_invariants=True
    ).coalesce()


def _rest_moments(
    weights: np.ndarray,
    skin_weight: np.ndarray,
    slots: np.ndarray,
    pairs: int,
    T0: np.ndarray,
    Sv: np.ndarray,
    *,
    device: torch.device,
) -> _RestMoments:
    """The rest vertices' moments (float64): sums over the vertices of each pair of joints, weighted by the product
    of their skinning weights (one sparse ``(P, Vm)`` product), and the per-joint weighted sums. ``weights (Vm,
    J)``, ``skin_weight`` and ``slots (Vm, K)`` (a vertex's K largest weights and the pair slot of each product),
    ``T0 (Vm, 3)`` the template, ``Sv (Vm, S, 3)`` the shape basis."""
    Vm, K = skin_weight.shape
    J, S = weights.shape[1], Sv.shape[1]
    pair_index = np.stack([slots.reshape(-1), np.repeat(np.arange(Vm), K * K)])
    pair_value = (skin_weight[:, :, None] * skin_weight[:, None, :]).reshape(-1)
    by_pair = torch.sparse_coo_tensor(
        torch.as_tensor(pair_index),
        torch.as_tensor(pair_value, dtype=torch.float64),
        (pairs, Vm),
        check_invariants=True,
    ).coalesce()

    def pair_sum(values: np.ndarray) -> torch.Tensor:
        return (by_pair @ torch.as_tensor(values.reshape(Vm, -1))).to(device)

    W64 = np.asarray(weights, dtype=np.float64)
    return _RestMoments(
        count=pair_sum(np.ones(Vm))[:, 0],
        template=pair_sum(T0),
        shape=pair_sum(Sv).reshape(pairs, S, 3),
        template_outer=pair_sum(T0[:, :, None] * T0[:, None, :]).reshape(pairs, 3, 3),
        template_shape=pair_sum(np.einsum("vc,vsd->vscd", T0, Sv)).reshape(pairs, S, 3, 3),
        # C order: no copy to reshape
        shape_outer=pair_sum(np.einsum("vsc,vtd->vstcd", Sv, Sv, order="C")).reshape(pairs, S, S, 3, 3),
        joint_template=torch.as_tensor(W64.T @ T0, device=device),
        joint_shape=torch.as_tensor((W64.T @ Sv.reshape(Vm, S * 3)).reshape(J, S, 3), device=device),
        joint_count=torch.as_tensor(W64.sum(0), device=device),
    )


def _skin_blocks(
    skinned: np.ndarray, below: np.ndarray, parents: tuple[int, ...], *, min_rows: int = 256
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Vertices in blocks skinned by few joints: ``(rows, joints)`` per block, covering every row of ``skinned
    (V, J)`` (bool) once. Greedy: split off the vertices skinned only within one joint's subtree and its parent
    (``below (J, J)``: ``[k, m]`` where ``m`` is ``k`` or below it) while that lowers the skinning products' cost
    (rows times joints) by 5%. On SMPL-X the hands and feet come apart, and the dense products take about half the
    work; blocks under ``min_rows`` rows are not worth their own product."""
    J = skinned.shape[1]

    def cost(rows: np.ndarray) -> int:
        return len(rows) * int(skinned[rows].any(0).sum())

    blocks, rest = [], np.arange(len(skinned))
    while True:
        best: tuple[int, np.ndarray, np.ndarray] | None = None
        for r in range(1, J):
            allowed = below[r].copy()
            allowed[parents[r]] = True
            inside = ~(skinned[rest] & ~allowed).any(1)
            a, b = rest[inside], rest[~inside]
            if len(a) < min_rows or len(b) == 0:
                continue
            gain = cost(rest) - cost(a) - cost(b)
            if best is None or gain > best[0]:
                best = (gain, a, b)
        if best is None or best[0] < 0.05 * cost(rest):
            break
        blocks.append(best[1])
        rest = best[2]
    blocks.append(rest)
    return [(rows, np.flatnonzero(skinned[rows].any(0))) for rows in blocks]


@dataclass
class FitState:
    """Per-frame parameters being fitted: ``rel (B, J, 3, 3)`` local rotations, ``trans (B, 3)``."""

    rel: torch.Tensor
    trans: torch.Tensor

    def take(self, idx: torch.Tensor) -> FitState:
        return FitState(self.rel[idx], self.trans[idx])

    def put(self, idx: torch.Tensor, other: FitState) -> None:
        self.rel[idx] = other.rel
        self.trans[idx] = other.trans


class Scratch:
    """Buffers for a fit's large per-vertex temporaries, reused from call to call: a fresh allocation of this size is
    mapped in by the operating system page by page on every call (measured: about 8% of a fit on a CPU). What
    :func:`evaluate` returns from a scratch holds its buffers: it is valid until the next call with the same
    scratch."""

    def __init__(self) -> None:
        self._flat: dict[str, torch.Tensor] = {}

    def __call__(
        self, name: str, shape: tuple[int, ...], like: torch.Tensor, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """An uninitialised ``shape`` tensor on ``like``'s device, of ``dtype`` (default ``like``'s)."""
        dtype = like.dtype if dtype is None else dtype
        numel = int(np.prod(shape))
        buf = self._flat.get(name)
        if buf is None or buf.numel() < numel or buf.dtype != dtype or buf.device != like.device:
            buf = torch.empty(numel, dtype=dtype, device=like.device)
            self._flat[name] = buf
        return buf[:numel].view(shape)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One forward pass over the masked vertices of ``B`` frames, per-vertex arrays with the frames last (the
    skinning and blend-shape products are then single matrix products: batched per frame they measured 2-3x slower).

    Attributes:
        vertices_vm, residual_vm: ``(Vm, 3, B)`` posed vertices and ``vertices - goal``.
        rest_vm: ``(Vm, 3, B)`` rest vertices with the pose blend shapes.
        blended_vm: ``(Vm, 3, 4, B)`` each vertex's blended transform ``sum_m w_im A_m``.
        squared_vm: ``(Vm, B)`` each vertex's squared residual.
        glob, joints: ``(B, J, 3, 3)`` global rotations and ``(B, J, 3)`` posed joints.
        cost: ``(B,)`` squared error summed over the vertices (float64).
    """

    vertices_vm: torch.Tensor
    residual_vm: torch.Tensor
    rest_vm: torch.Tensor
    blended_vm: torch.Tensor
    squared_vm: torch.Tensor
    glob: torch.Tensor
    joints: torch.Tensor
    cost: torch.Tensor

    @property
    def vertices(self) -> torch.Tensor:
        """``(B, Vm, 3)`` (a view)."""
        return self.vertices_vm.permute(2, 0, 1)

    @property
    def residual(self) -> torch.Tensor:
        """``(B, Vm, 3)`` (a view)."""
        return self.residual_vm.permute(2, 0, 1)

    def error(self) -> torch.Tensor:
        """``(B, Vm)`` every vertex's distance to its goal (a new tensor)."""
        return self.squared_vm.sqrt().T.contiguous()

    def take(self, idx: torch.Tensor) -> Evaluation:
        """The frames ``idx`` (indices or a mask), copied out of any scratch."""
        return Evaluation(
            self.vertices_vm[..., idx],
            self.residual_vm[..., idx],
            self.rest_vm[..., idx],
            self.blended_vm[..., idx],
            self.squared_vm[..., idx],
            self.glob[idx],
            self.joints[idx],
            self.cost[idx],
        )


def frames_last(goal: torch.Tensor) -> torch.Tensor:
    """``(B, Vm, 3)`` -> ``(Vm, 3, B)`` (contiguous), the layout :func:`evaluate` takes its goal in."""
    return goal.permute(1, 2, 0).contiguous()


def evaluate(
    target: TargetModel,
    betas: torch.Tensor,
    state: FitState,
    goal_vm: torch.Tensor | None = None,
    *,
    scratch: Scratch | None = None,
) -> Evaluation:
    """The target model's masked vertices for ``state`` and the shape ``betas (S,)``, and their residual to
    ``goal_vm (Vm, 3, B)`` (see :func:`frames_last`) where given; in ``scratch``'s buffers where given."""
    m = target.model
    scratch = Scratch() if scratch is None else scratch
    rest, joints_rest = target.rest_vertices(betas), target.rest_joints(betas)
    B, J = state.rel.shape[:2]
    Vm = rest.shape[0]
    eye = torch.eye(3, device=rest.device, dtype=rest.dtype)
    feature = (state.rel[:, 1:] - eye).reshape(B, -1)
    v_rest = torch.addmm(
        rest.reshape(-1, 1), target.pose_basis.T, feature.T, out=scratch("rest", (Vm * 3, B), rest)
    ).view(Vm, 3, B)
    glob, posed = forward_kinematics(state.rel, joints_rest, m.levels)
    posed = posed + state.trans[:, None, :]
    tau = posed - (glob @ joints_rest[..., None]).squeeze(-1)
    A = torch.cat([glob, tau[..., None]], dim=-1)  # (B, J, 3, 4)
    # dense products with the skinning weights, block by block (a gather of each vertex's few joints measured slower)
    A_vm = A.permute(1, 2, 3, 0).reshape(J, 12 * B)
    blended = scratch("blended", (Vm, 12 * B), rest)
    for start, end, joints, w in target.skin_blocks:
        torch.mm(w, A_vm[joints], out=blended[start:end])
    blended = blended.view(Vm, 3, 4, B)
    vertices = torch.addcmul(
        blended[:, :, 3], blended[:, :, 0], v_rest[:, None, 0], out=scratch("vertices", (Vm, 3, B), rest)
    )
    vertices.addcmul_(blended[:, :, 1], v_rest[:, None, 1]).addcmul_(blended[:, :, 2], v_rest[:, None, 2])
    residual = vertices
    if goal_vm is not None:
        residual = torch.sub(vertices, goal_vm, out=scratch("residual", (Vm, 3, B), rest))
    squared = torch.mul(residual[:, 0], residual[:, 0], out=scratch("squared", (Vm, B), rest))
    squared.addcmul_(residual[:, 1], residual[:, 1]).addcmul_(residual[:, 2], residual[:, 2])
    cost = squared.sum(0, dtype=torch.float64)
    return Evaluation(vertices, residual, v_rest, blended, squared, glob, posed, cost)


@dataclass(frozen=True, eq=False)
class _Moments:
    """Moments of the rest mesh (without pose blend shapes) for the Gauss-Newton matrix (working precision):
    ``M (P, 4, 4)``, ``T (P, S, 4, 4)``, ``mu (J, 4) = sum_i w_im x_i``, ``nu (J, S, 4) = sum_i w_im [S_is; 1]``."""

    M: torch.Tensor
    T: torch.Tensor
    mu: torch.Tensor
    nu: torch.Tensor


@dataclass(frozen=True, eq=False)
class _RestMoments:
    """Sums over the masked vertices of each pair of joints ``p = (m, n)`` (weights ``ww_i = w_im w_in``) and of each
    joint (weights ``w_im``), of the template ``T_i`` and the shape basis ``S_is``, float64: with the rest vertices
    ``T_i + sum_s beta_s S_is``, every moment the fit needs is a polynomial in the shape (:func:`_moments`).

    ``count (P,) = sum ww``, ``template (P, 3) = sum ww T``, ``shape (P, S, 3) = sum ww S_s``, ``template_outer (P, 3,
    3) = sum ww T T^T``, ``template_shape (P, S, 3, 3) = sum ww T S_s^T``, ``shape_outer (P, S, S, 3, 3) = sum ww S_s
    S_t^T``; per joint ``joint_template (J, 3) = sum w T``, ``joint_shape (J, S, 3) = sum w S_s``, ``joint_count
    (J,) = sum w``.
    """

    count: torch.Tensor
    template: torch.Tensor
    shape: torch.Tensor
    template_outer: torch.Tensor
    template_shape: torch.Tensor
    shape_outer: torch.Tensor
    joint_template: torch.Tensor
    joint_shape: torch.Tensor
    joint_count: torch.Tensor


def _moments(target: TargetModel, betas: torch.Tensor) -> _Moments:
    """The rest mesh's moments for the shape ``betas (S,)``: contractions of :class:`_RestMoments` with the shape
    (a gather over the vertices measured 10% of a 64-frame fit)."""
    f64 = torch.float64
    rm = target.rest_moments
    b = betas.to(f64)
    S = len(b)
    Sp, TS, SS = rm.shape[:, :S], rm.template_shape[:, :S], rm.shape_outer[:, :S, :S]
    P = Sp.shape[0]
    rest = rm.template + torch.einsum("s,psc->pc", b, Sp)  # sum ww x
    X = torch.einsum("t,ptcd->pcd", b, TS)
    outer = (
        rm.template_outer + X + X.transpose(1, 2) + torch.einsum("s,t,pstcd->pcd", b, b, SS)
    )  # sum ww x x^T
    rest_shape = TS + torch.einsum("t,ptscd->pscd", b, SS)  # sum ww x S_s^T
    M = torch.empty(P, 4, 4, dtype=f64, device=b.device)
    M[:, :3, :3], M[:, :3, 3], M[:, 3, :3], M[:, 3, 3] = outer, rest, rest, rm.count
    T = torch.empty(P, S, 4, 4, dtype=f64, device=b.device)
    T[:, :, :3, :3] = rest_shape
    T[:, :, :3, 3] = rest[:, None]
    T[:, :, 3, :3] = Sp
    T[:, :, 3, 3] = rm.count[:, None]
    J = rm.joint_count.shape[0]
    mu = torch.cat(
        [rm.joint_template + torch.einsum("s,jsc->jc", b, rm.joint_shape[:, :S]), rm.joint_count[:, None]], 1
    )
    nu = torch.cat([rm.joint_shape[:, :S], rm.joint_count[:, None, None].expand(J, S, 1)], 2)
    dt = target.weights.dtype  # exact in float64, used in the working precision (they only steer)
    return _Moments(M.to(dt), T.to(dt), mu.to(dt), nu.to(dt))


@dataclass
class _Linear:
    """The normal equations of ``B`` frames: ``H (B, n, n)`` (float32: it only steers), ``g (B, n)``, and with a
    shared shape ``C (B, n, S)``, ``Hss (B, S, S)``, ``h (B, S)`` (float64), ``n = 3 J + 3``."""

    H: torch.Tensor
    g: torch.Tensor
    C: torch.Tensor | None = None
    Hss: torch.Tensor | None = None
    h: torch.Tensor | None = None

    def put(self, idx: torch.Tensor, other: _Linear) -> None:
        for name in ("H", "g", "C", "Hss", "h"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None:
                mine[idx] = theirs


def _skew(v: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` -> ``(..., 3, 3)`` with ``[v]x w = v x w``."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(*v.shape, 3)


def _axial(Y: torch.Tensor) -> torch.Tensor:
    """``sum_i a_i x b_i`` from ``Y = sum_i a_i b_i^T`` (``(..., 3, 3)`` -> ``(..., 3)``)."""
    return torch.stack(
        [Y[..., 1, 2] - Y[..., 2, 1], Y[..., 2, 0] - Y[..., 0, 2], Y[..., 0, 1] - Y[..., 1, 0]], -1
    )


def _linearize(
    target: TargetModel,
    moments: _Moments,
    betas: torch.Tensor,
    state: FitState,
    ev: Evaluation,
    *,
    shape: bool,
    matrix: bool = True,
    scratch: Scratch | None = None,
) -> _Linear:
    """The exact gradient, and (``matrix``) the Gauss-Newton matrix, of ``B`` frames; with ``shape`` the shape's
    parts too. Without ``matrix`` the returned ``H`` (and ``C``, ``Hss``) are empty placeholders for the caller to
    fill with earlier ones."""
    grad = _gradient(target, betas, state, ev, shape=shape, scratch=Scratch() if scratch is None else scratch)
    if not matrix:
        return _Linear(torch.empty(0), grad.g, None, None, grad.h)
    lin = _Linear(
        _pose_matrix(target, moments, grad).to(torch.float32), grad.g
    )  # kept in float32 (frames x 168 x 168)
    if not shape:
        return lin
    C, Hss = _shape_blocks(target, moments, grad)
    lin.C, lin.Hss, lin.h = C.to(torch.float64), Hss.to(torch.float64), grad.h
    return lin


@dataclass
class _Gradient:
    """The exact gradient of ``B`` frames, ``g (B, n)`` and with the shape ``h (B, S)`` (float64), and what the
    Gauss-Newton blocks reuse: the joints' transforms ``A (B, J, 3, 4)`` (``G`` their rotations), positions ``p (B, J,
    3)``, ``F (B, J-1, 3, 9)`` (d vec(L_k) / d delta_k), with the shape ``dtau (B, J, 3, S)``; ``Vm`` vertices."""

    g: torch.Tensor
    h: torch.Tensor | None
    A: torch.Tensor
    G: torch.Tensor
    p: torch.Tensor
    F: torch.Tensor
    dtau: torch.Tensor | None
    Vm: int


def _gradient(
    target: TargetModel,
    betas: torch.Tensor,
    state: FitState,
    ev: Evaluation,
    *,
    shape: bool,
    scratch: Scratch,
) -> _Gradient:
    """The exact gradient of the fit's cost at ``state`` (see :class:`_Gradient`)."""
    f64 = torch.float64
    B, J = state.rel.shape[:2]
    n = 3 * J + 3
    S = len(betas)
    D = target.descendants.to(f64)  # the gradient's subtree sums in float64
    G, p = ev.glob, ev.joints
    joints_rest = target.rest_joints(betas)
    tau = p - (G @ joints_rest[..., None]).squeeze(-1)
    A = torch.cat([G, tau[..., None]], dim=-1)  # (B, J, 3, 4)

    r, rest = ev.residual_vm, ev.rest_vm  # (Vm, 3, B)
    Vm = r.shape[0]
    xr = scratch("xr", (Vm, 4, 3, B), r)  # [vbar_i; 1] r_i^T
    torch.mul(rest[:, :, None], r[:, None], out=xr[:, :3])
    xr[:, 3] = r
    # dense products with the weights, block by block (a sparse product measured slower)
    xr_flat = xr.view(Vm, 12 * B)
    E = torch.zeros(J, 12 * B, dtype=r.dtype, device=r.device)
    for start, end, joints, w in target.skin_blocks:
        E.index_add_(0, joints, w.T @ xr_flat[start:end])
    E = E.reshape(J, 4, 3, B).permute(3, 0, 1, 2).to(f64)
    A64, p64 = A.to(f64), p.to(f64)
    rot = _axial(A64 @ E)  # (B, J, 3)
    e = E[:, :, 3]  # (B, J, 3): sum_i w_im r_i
    g = torch.zeros(B, n, dtype=f64, device=r.device)
    g_rot = (D @ rot) - torch.linalg.cross(p64, D @ e)
    bl = ev.blended_vm
    s_ = torch.mul(r[:, 0, None], bl[:, 0, :3], out=scratch("s", (Vm, 3, B), r))  # (Vm, 3, B): B_i^T r_i
    s_.addcmul_(r[:, 1, None], bl[:, 1, :3]).addcmul_(r[:, 2, None], bl[:, 2, :3])
    s_ = s_.reshape(Vm * 3, B)
    if target.pose_basis_bf16 is not None:
        # the pose-blend term in bfloat16 (inputs rounded to 8 bits, sums in float32): an error ``e`` in the
        # gradient moves the minimum by ``H^-1 e`` and raises the cost by only ``e^T H^-1 e / 2``; measured on the
        # benchmark, the same error to 0.001 mm
        s_low = scratch("s_bf16", (Vm * 3, B), r, torch.bfloat16).copy_(s_)
        z = (target.pose_basis_bf16 @ s_low).T.to(f64).reshape(B, J - 1, 9)
    else:
        z = (target.pose_basis @ s_).T.to(f64).reshape(B, J - 1, 9)
    parents = torch.as_tensor(target.model.parents[1:], device=r.device)
    rows = G[:, parents].to(f64)  # (B, J-1, 3, 3): row a is G_parent^T e_a
    F = (_skew(rows) @ state.rel[:, 1:, None].to(f64)).reshape(B, J - 1, 3, 9)  # d vec(L_k) / d delta_k[a]
    g_rot[:, 1:] += torch.einsum("bjn,bjan->bja", z, F)
    g[:, : 3 * J] = g_rot.reshape(B, -1)
    g[:, 3 * J :] = e.sum(1)  # sum_i r_i (the weights of a vertex sum to one)
    h = dtau = None
    if shape:
        JS = target.joint_shape_basis[..., :S].to(f64)  # (J, 3, S)
        dp = torch.empty(B, J, 3, S, device=r.device, dtype=f64)
        dp[:, 0] = JS[0]
        G64 = G.to(f64)
        for joints, parents_ in target.model.levels:
            dp[:, joints] = dp[:, parents_] + G64[:, parents_] @ (JS[joints] - JS[parents_])[None]
        dtau = dp - G64 @ JS[None]  # (B, J, 3, S)
        h = (target.shape_basis[:S] @ s_).T.to(f64) + torch.einsum("bjcs,bjc->bs", dtau, e)
    return _Gradient(g, h, A, G, p, F, dtau, Vm)


def _about_root(
    target: TargetModel, A: torch.Tensor, p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The joints' transforms ``A (B, J, 3, 4)`` and positions ``p (B, J, 3)`` about the root (the Gauss-Newton
    matrix does not depend on the origin; about the root its cancellations stay far from float32's limits): ``Ao``,
    ``po (B, J, 3)``, and for the skinning pairs ``(m_p, n_p)`` of joints, their indices ``pm``, ``pn`` and transforms
    ``Am``, ``An (P, B, 3, 4)``."""
    o = p[:, :1]
    Ao = A.clone()
    Ao[..., 3] -= o
    pm, pn = target.pairs[:, 0], target.pairs[:, 1]
    return Ao, p - o, pm, pn, Ao[:, pm].transpose(0, 1), Ao[:, pn].transpose(0, 1)


def _pose_matrix(target: TargetModel, moments: _Moments, grad: _Gradient) -> torch.Tensor:
    """The Gauss-Newton matrix of the poses and translations, ``(B, n, n)`` in the working precision."""
    A, p, F, Vm = grad.A, grad.p, grad.F, grad.Vm
    B, J = p.shape[:2]
    n = 3 * J + 3
    # from the moments, about the root, in the working precision: it only steers
    wp = A.dtype
    Dw = target.descendants
    Ao, po, pm, _, Am, An = _about_root(target, A, p)
    P = len(pm)
    Mp = moments.M
    AM = (Am.reshape(P, B * 3, 4) @ Mp).reshape(P, B, 3, 4)  # A_m M_p
    Q = (AM[:, :, :, None, :] * An[:, :, None, :, :]).sum(-1)  # (P, B, 3, 3): A_m M_p A_n^T
    X = torch.cat([Q.reshape(P, B, 9), AM[..., 3], Mp[:, 3, 3, None, None].expand(P, B, 1)], -1)  # (P, B, 13)
    # subtree sums over both joints of every pair: one sparse product
    Y = (target.subtree_pairs @ X.reshape(P, B * 13)).reshape(J, J, B, 13).permute(2, 0, 1, 3).contiguous()
    YQ, YR, Ys = Y[..., :9], Y[..., 9:12], Y[..., 12]  # (B, J, J, ...): YQ[..., 3 i + j] = YQ_ij
    pk, pl = po[:, :, None], po[:, None, :]  # (B, J, 1, 3), (B, 1, J, 3)
    # N_kl = YQ_kl - YR_kl p_l^T - p_k (YR_lk - Ys_kl p_l)^T, the sums of (A_m x - p_k)(A_n x - p_l)^T; each 3 x 3
    # block of the rotations' matrix is tr(N_kl) I - N_kl^T, written entry by entry into place (whole-block
    # broadcasts measured 4x slower)
    left = YR.transpose(1, 2) - Ys[..., None] * pl  # (B, J, J, 3)
    trace = YQ[..., 0] + YQ[..., 4] + YQ[..., 8] - (YR * pl).sum(-1) - (pk * left).sum(-1)
    H = torch.empty(B, n, n, dtype=wp, device=A.device)
    Hrr = H[:, : 3 * J, : 3 * J].view(B, J, 3, J, 3)
    for a in range(3):
        for c in range(3):
            block = torch.mul(YR[..., c], pl[..., a], out=Hrr[:, :, a, :, c])  # -N_ca, term by term
            block.addcmul_(pk[..., c], left[..., a]).sub_(YQ[..., 3 * c + a])
            if a == c:
                block.add_(trace)
    eye = torch.eye(3, dtype=wp, device=A.device)
    csum = Dw @ (Ao @ moments.mu[..., None]).squeeze(-1) - po * (Dw @ moments.mu[:, 3])[..., None]
    cross = _skew(csum).reshape(B, 3 * J, 3)
    H[:, : 3 * J, 3 * J :] = cross
    H[:, 3 * J :, : 3 * J] = cross.transpose(1, 2)
    H[:, 3 * J :, 3 * J :] = Vm * eye
    # the pose blend shapes' diagonal blocks, taking each blended rotation as orthonormal
    Fw = F.to(wp)
    diag_blocks = Fw @ target.pose_gram @ Fw.transpose(-1, -2)  # (B, J-1, 3, 3)
    idx = torch.arange(1, J, device=A.device)
    Hrr[:, idx, :, idx, :] += diag_blocks.permute(1, 0, 2, 3)
    return H


def _shape_blocks(
    target: TargetModel, moments: _Moments, grad: _Gradient
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gauss-Newton blocks of the shared shape: the coupling ``C (B, n, S)`` and the shape block ``Hss (B, S,
    S)``, in the working precision."""
    A, G, p, dtau = grad.A, grad.G, grad.p, grad.dtau
    assert dtau is not None, "the gradient was taken without the shape"
    B, J, S = dtau.shape[0], dtau.shape[1], dtau.shape[3]
    n = 3 * J + 3
    wp = A.dtype
    Dw = target.descendants
    _, po, pm, pn, Am, _ = _about_root(target, A, p)
    P = len(pm)
    # from the moments
    # coupling: sum_i c_ik x u_is over the pairs, with u_is = sum_n w_in [G_n | dtau_ns] [S_is; 1]
    T = moments.T  # (P, S, 4, 4)
    dtau_w = dtau.to(wp)
    Gn = G[:, pn].transpose(0, 1)  # (P, B, 3, 3)
    dn = dtau_w[:, pn].transpose(0, 1)  # (P, B, 3, S)
    kron = (Am[:, :, :, None, :, None] * Gn[:, :, None, :, None, :]).reshape(P, B * 9, 12)  # [x, y], [c, d]
    Z = (kron @ T[:, :, :, :3].reshape(P, S, 12).transpose(1, 2)).reshape(P, B, 3, 3, S)
    AT = (Am.reshape(P, B * 3, 4) @ T[:, :, :, 3].transpose(1, 2)).reshape(P, B, 3, S)  # A_m T[..., 3]
    Z = Z + AT[:, :, :, None, :] * dn[:, :, None, :, :]  # (P, B, 3 [x], 3 [y], S)
    axial = torch.stack(
        [Z[:, :, 1, 2] - Z[:, :, 2, 1], Z[:, :, 2, 0] - Z[:, :, 0, 2], Z[:, :, 0, 1] - Z[:, :, 1, 0]], 2
    )
    t3 = T[:, :, 3]  # (P, S, 4): sum_i w w' [S_is; 1]
    Wv = (Gn.reshape(P, B * 3, 3) @ t3[:, :, :3].transpose(1, 2)).reshape(P, B, 3, S) + dn * t3[
        :, None, None, :, 3
    ]
    Cz = torch.zeros(J, B, 6, S, dtype=wp, device=A.device)
    Cz.index_add_(0, pm, torch.cat([axial, Wv], 2))
    Cz = (Dw @ Cz.reshape(J, -1)).reshape(J, B, 6, S).permute(1, 0, 3, 2)  # (B, J, S, 6)
    C_rot = Cz[..., :3] - torch.linalg.cross(
        po[:, :, None].expand(-1, -1, S, -1), Cz[..., 3:]
    )  # (B, J, S, 3)
    C = torch.empty(B, n, S, dtype=wp, device=A.device)
    C[:, : 3 * J] = C_rot.permute(0, 1, 3, 2).reshape(B, 3 * J, S)
    nu = moments.nu  # (J, S, 4)
    C[:, 3 * J :] = torch.einsum("bjcd,jsd->bcs", G, nu[..., :3]) + torch.einsum(
        "bjcs,js->bcs", dtau_w, nu[..., 3]
    )
    # the shape block: sum_i u_is . u_it from the moments (exact, with the rest vertices' shape basis)
    Gm = G[:, pm].transpose(0, 1)  # (P, B, 3, 3)
    dm = dtau_w[:, pm].transpose(0, 1)
    GG = Gm.transpose(-1, -2) @ Gn  # (P, B, 3, 3): G_m^T G_n
    Hss = torch.einsum("pbcd,pstcd->bst", GG, target.shape_pairs[:, :S, :S])
    ts = t3[:, :, :3]  # (P, S, 3): sum_i w w' S_is
    cross_s = torch.einsum("psc,pbdc,pbdt->bst", ts, Gm, dn)  # (G_m S_is) . dtau_nt
    Hss = Hss + cross_s + cross_s.transpose(1, 2)
    Hss = Hss + torch.einsum("p,pbcs,pbct->bst", moments.M[:, 3, 3], dm, dn)
    return C, Hss


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


def _damped(H: torch.Tensor, lam: torch.Tensor, floor: float | torch.Tensor = DAMPING_FLOOR) -> torch.Tensor:
    """Marquardt's damping ``H + lam diag(H)`` (float64), with a floor (``floor`` of the mean curvature; a number, or
    ``(B, 1)`` per frame)."""
    damped = H.to(torch.float64, copy=True)
    diag = torch.diagonal(damped, dim1=-2, dim2=-1)
    scale = diag.mean(-1, keepdim=True).clamp_min(1e-30)
    diag.add_(lam[:, None] * diag + floor * scale)
    return damped


def _factor_damped(
    H: torch.Tensor, lam: torch.Tensor, floor: float | torch.Tensor = DAMPING_FLOOR
) -> torch.Tensor:
    """Cholesky factors ``(B, n, n)`` of the damped ``H`` (float64); a frame whose matrix does not factor gets a
    factor of an enormous matrix (it takes no step)."""
    A = _damped(H, lam, floor)
    L, info = torch.linalg.cholesky_ex(A)
    bad = info != 0
    if bad.any():
        L[bad] = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device) * 1e150
    return L


def _solve_damped(
    H: torch.Tensor, lam: torch.Tensor, rhs: torch.Tensor, floor: float | torch.Tensor = DAMPING_FLOOR
) -> torch.Tensor:
    """``(H + damping)^-1 rhs`` for ``H (B, n, n)``, ``rhs (B, n, k)`` by Cholesky (float64); zeros for a frame
    whose matrix does not factor."""
    return torch.cholesky_solve(rhs.to(torch.float64), _factor_damped(H, lam, floor))


@dataclass(frozen=True, eq=False)
class FitResult:
    """What :func:`fit` ends with, for ``N`` frames: the shape ``betas (S,)``, ``cost (N,)`` (mean squared vertex
    error, m^2), ``iterations (N,)``, the mean vertex error at the start ``initial_error (N,)``, and at the end every
    vertex's error ``vertex_error (N, Vm)`` (metres) and the posed ``joints (N, J, 3)``."""

    betas: torch.Tensor
    cost: torch.Tensor
    iterations: torch.Tensor
    initial_error: torch.Tensor
    vertex_error: torch.Tensor
    joints: torch.Tensor


def fit(
    target: TargetModel,
    betas: torch.Tensor,
    goals: list[torch.Tensor],
    states: list[FitState],
    *,
    fit_shape: bool = True,
    max_iterations: int = 10,
    tolerance: float = 1e-6,
    scratch: Scratch | None = None,
) -> FitResult:
    """Fit every frame's rotations and translation, and (``fit_shape``) the one shape they share, to ``goals``.

    Args:
        betas: ``(S,)`` the starting shape.
        goals: chunks ``(B_c, Vm, 3)`` of target vertices (frames of one sequence, or independent poses).
        states: their starting parameters, updated in place.
        max_iterations: Levenberg-Marquardt iterations at most.
        tolerance: stop when an iteration lowers the squared error by less than this fraction (of the whole
            sequence with a shared shape, of each frame without).
        scratch: buffers to reuse (a caller fitting many sequences keeps one per thread); default a new one.
    """
    problem = _Problem(
        target, betas, goals, states, max_iterations, tolerance, Scratch() if scratch is None else scratch
    )
    return _fit_shared(problem) if fit_shape else _fit_independent(problem)


@dataclass(frozen=True, eq=False)
class _Problem:
    """:func:`fit`'s arguments, for its two strategies."""

    target: TargetModel
    betas: torch.Tensor
    goals: list[torch.Tensor]
    states: list[FitState]
    max_iterations: int
    tolerance: float
    scratch: Scratch


def _fit_independent(problem: _Problem) -> FitResult:
    """Every frame on its own: its own damping, its own steps, its own stop."""
    target, betas, goals, states = problem.target, problem.betas, problem.goals, problem.states
    max_iterations, tolerance = problem.max_iterations, problem.tolerance
    moments = _moments(target, betas)
    parents = target.model.parents
    # the squared error of positions rounded to the working precision (metres)
    rounding = len(target.mask) * torch.finfo(target.template.dtype).eps ** 2
    costs, its, initial, errors, joints = [], [], [], [], []
    scratch = problem.scratch  # an evaluation's frames are copied out before the next one
    for goal, state in zip(goals, states, strict=True):
        B = goal.shape[0]
        dev = goal.device
        goal_vm = frames_last(goal)
        ev = evaluate(target, betas, state, goal_vm, scratch=scratch)
        cost, glob, err, posed = ev.cost, ev.glob, ev.error(), ev.joints
        initial.append(err.mean(1))
        lin = _linearize(target, moments, betas, state, ev, shape=False, scratch=scratch)
        lam = torch.full((B,), 1e-3, device=dev, dtype=torch.float64)
        iterations = torch.zeros(B, dtype=torch.long, device=dev)
        active = torch.ones(B, dtype=torch.bool, device=dev)
        built = torch.ones(
            B, dtype=torch.long, device=dev
        )  # matrices built per frame (then kept, as in the shared fit)
        for it in range(max_iterations):
            idx = torch.nonzero(active).squeeze(1)
            if idx.numel() == 0:
                break
            floor = torch.where(built[idx] >= MATRIX_BUILDS, KEPT_FLOOR, DAMPING_FLOOR).to(torch.float64)[
                :, None
            ]
            step = -_solve_damped(lin.H[idx], lam[idx], lin.g[idx, :, None], floor).squeeze(-1)
            # the model promises almost nothing (a minimum, or exact to rounding already): that frame is done
            promised = -2 * (lin.g[idx] * step).sum(1)
            settled = promised <= tolerance * cost[idx] + rounding
            if settled.any():
                active[idx[settled]] = False
                idx, step = idx[~settled], step[~settled]
                if idx.numel() == 0:
                    break
            candidate = _apply_step(state.take(idx), glob[idx], step, parents)
            ev_c = evaluate(target, betas, candidate, goal_vm[..., idx], scratch=scratch)
            better = ev_c.cost < cost[idx]
            iterations[idx] += 1
            if better.any():
                take = idx[better]
                kept = ev_c.take(better)
                sub = candidate.take(better)
                if it < max_iterations - 1:  # after the last step the normal equations are not needed
                    fresh = built[take] < MATRIX_BUILDS
                    # a new matrix for frames under MATRIX_BUILDS, the gradient alone for the others
                    for with_matrix, rows_of in ((True, fresh), (False, ~fresh)):
                        if not rows_of.any():
                            continue
                        rows = torch.nonzero(rows_of).squeeze(1)
                        part = _linearize(
                            target,
                            moments,
                            betas,
                            sub.take(rows),
                            kept.take(rows),
                            shape=False,
                            matrix=with_matrix,
                            scratch=scratch,
                        )
                        if with_matrix:
                            lin.put(take[rows], part)
                            built[take[rows]] += 1
                        else:
                            lin.g[take[rows]] = part.g
                state.put(take, sub)
                glob[take], err[take], posed[take] = kept.glob, kept.error(), kept.joints
                gain = (cost[take] - kept.cost) / cost[take].clamp_min(1e-300)
                cost[take] = kept.cost
                lam[take] = (lam[take] / 3).clamp_min(1e-9)
                done = (gain < tolerance) | (step[better].abs().amax(1) < 1e-9)
                active[take[done]] = False
            worse = idx[~better]
            lam[worse] = lam[worse] * 4
            active[worse[lam[worse] > 1e6]] = False  # no step lowers the cost: a minimum (to rounding)
        costs.append(cost / goal.shape[1])
        its.append(iterations)
        errors.append(err)
        joints.append(posed)
    return FitResult(
        betas, torch.cat(costs), torch.cat(its), torch.cat(initial), torch.cat(errors), torch.cat(joints)
    )


@dataclass(frozen=True, eq=False)
class _Pass:
    """One chunk's evaluation in the shared fit: its normal equations (None after the last step), global rotations,
    per-frame cost, per-vertex errors and posed joints."""

    lin: _Linear | None
    glob: torch.Tensor
    cost: torch.Tensor
    error: torch.Tensor
    joints: torch.Tensor


def _fit_shared(problem: _Problem) -> FitResult:
    """All frames and their one shape together: one damping, steps accepted when the sequence's error falls."""
    betas, states, max_iterations = problem.betas, problem.states, problem.max_iterations
    moments = _moments(problem.target, betas)
    passes = _shared_passes(problem, moments, betas, states, linearize=max_iterations > 0)
    initial = torch.cat([p.error.mean(1) for p in passes])
    total = sum(float(p.cost.sum()) for p in passes)
    lam = 1e-3
    iterations = 0
    built = 1  # linearizations with a new matrix so far
    factors: _SharedFactors | None = None
    for it in range(max_iterations):
        iterations += 1
        if factors is None:
            factors = _factor_shared(passes, lam, built)
        dbeta, candidates = _shared_step(problem, passes, factors, betas, states)
        beta_c = betas + dbeta.to(betas.dtype)
        # the matrix is rebuilt for the first MATRIX_BUILDS linearizations only: later steps keep it (and its
        # factors), with the exact gradient at each new point, so the fit still ends at the exact minimum
        fresh = built < MATRIX_BUILDS
        passes_c = _shared_passes(
            problem,
            moments,
            beta_c,
            candidates,
            linearize=it < max_iterations - 1,
            earlier=None if fresh else passes,
        )
        total_c = sum(float(p.cost.sum()) for p in passes_c)
        logger.debug(
            "iteration %d: cost %.6g -> %.6g (lambda %.3g, |dbeta| %.3g)",
            it,
            total,
            total_c,
            lam,
            float(dbeta.norm()),
        )
        if total_c < total:
            gain = (total - total_c) / max(total, 1e-300)
            betas, states[:], passes, total = beta_c, candidates, passes_c, total_c
            # a kept matrix keeps its damping and factors too (refactoring measured slower for no gain)
            if fresh:
                built += 1
                lam = max(lam / 3, 1e-9)
                factors = None
            if gain < problem.tolerance:
                break
        else:
            lam *= 4
            factors = None
            if lam > 1e6 or it == max_iterations - 1:
                break  # no step lowers the cost (a minimum, to rounding), or no step left
    cost = torch.cat([p.cost for p in passes]) / problem.goals[0].shape[1]
    return FitResult(
        betas,
        cost,
        torch.full_like(cost, iterations, dtype=torch.long),
        initial,
        torch.cat([p.error for p in passes]),
        torch.cat([p.joints for p in passes]),
    )


def _shared_passes(
    problem: _Problem,
    moments: _Moments,
    beta: torch.Tensor,
    chunks: list[FitState],
    *,
    linearize: bool = True,
    earlier: list[_Pass] | None = None,
) -> list[_Pass]:
    """Evaluate every chunk of frames at the shape ``beta``; with ``earlier``, the gradient only, its matrices taken
    from ``earlier``. Without ``linearize`` (after the last step), only the cost and the errors."""
    target, scratch = (
        problem.target,
        problem.scratch,
    )  # an evaluation's buffers are free once it is linearized
    out = []
    for k, (goal, state) in enumerate(zip(problem.goals, chunks, strict=True)):
        ev = evaluate(target, beta, state, frames_last(goal), scratch=scratch)
        lin = None
        if linearize:
            lin = _linearize(
                target, moments, beta, state, ev, shape=True, matrix=earlier is None, scratch=scratch
            )
            if earlier is not None:
                old = earlier[k].lin
                assert old is not None
                lin.H, lin.C, lin.Hss = old.H, old.C, old.Hss
        out.append(_Pass(lin, ev.glob, ev.cost, ev.error(), ev.joints))
    return out


@dataclass
class _SharedFactors:
    """Per chunk of frames, the Cholesky factor of its damped pose block and ``H^-1 C`` (float32: they only
    steer); the shape's damped Schur complement ``(S, S)``."""

    chunks: list[tuple[torch.Tensor, torch.Tensor]]
    reduced: torch.Tensor


def _factor_shared(passes: list[_Pass], lam: float, built: int) -> _SharedFactors:
    """Factor every frame's damped pose block, and the shape's Schur complement, at the damping ``lam``."""
    first = passes[0].lin
    assert first is not None and first.Hss is not None
    S, dev, f64 = first.Hss.shape[-1], first.Hss.device, torch.float64
    chunks = []
    reduced = torch.zeros(S, S, dtype=f64, device=dev)
    for p in passes:
        lin = p.lin
        assert lin is not None and lin.C is not None and lin.Hss is not None
        floor = DAMPING_FLOOR if built < MATRIX_BUILDS else KEPT_FLOOR
        L = _factor_damped(lin.H, torch.full((lin.H.shape[0],), lam, dtype=f64, device=dev), floor)
        HinvC = torch.cholesky_solve(lin.C, L)
        reduced += (lin.Hss - lin.C.transpose(1, 2) @ HinvC).sum(0)
        chunks.append((L.to(torch.float32), HinvC))
    diag = torch.diagonal(reduced)
    return _SharedFactors(chunks, reduced + torch.diag(lam * diag + 1e-12 * diag.mean().clamp_min(1e-30)))


def _shared_step(
    problem: _Problem,
    passes: list[_Pass],
    factors: _SharedFactors,
    betas: torch.Tensor,
    states: list[FitState],
) -> tuple[torch.Tensor, list[FitState]]:
    """The damped Gauss-Newton step: eliminate each frame's pose block, solve the shape, substitute back. Returns
    the shape's step ``(S,)`` float64 and the candidate states."""
    f64 = torch.float64
    rhs = torch.zeros(len(betas), dtype=f64, device=betas.device)
    Hinv_g = []
    for p, (L, _) in zip(passes, factors.chunks, strict=True):
        lin = p.lin
        assert lin is not None and lin.C is not None and lin.h is not None
        x = torch.cholesky_solve(lin.g[..., None].to(L.dtype), L).to(f64)
        rhs += (lin.h - (lin.C.transpose(1, 2) @ x).squeeze(-1)).sum(0)
        Hinv_g.append(x[..., 0])
    dbeta = -torch.linalg.solve(factors.reduced, rhs)
    parents = problem.target.model.parents
    candidates = [
        _apply_step(state, p.glob, -(x + HinvC @ dbeta), parents)
        for state, x, (_, HinvC), p in zip(states, Hinv_g, factors.chunks, passes, strict=True)
    ]
    return dbeta, candidates
