"""Linear blend skinning and forward kinematics for the SMPL family, as pure torch functions.

Frames: the model frame (Y-up). ``rel_rotmat`` are joint rotations relative to the parent joint, ``glob_rotmat`` the
accumulated rotations in the model/world frame. Shapes carry arbitrary leading batch dimensions ``...``.

Two choices make this faster than the usual implementation, without changing the result:

* forward kinematics runs level by level over the kinematic tree (all joints at one depth in one batched matmul),
  not joint by joint;
* skinning never forms a per-vertex 4x4 matrix. SMPL-family skinning weights are sparse (a few joints per vertex),
  so :func:`skin_sparse` goes joint by joint, vertex-major: each joint's ``[R | t]`` moves only the vertices it
  influences, and the weighted results are accumulated. The dense form (:func:`skin`: one GEMM blending 12 numbers per vertex) writes a
  ``(B, V, 12)`` array, which makes it memory-bound; it stays for dense weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "blend",
    "broadcast_shapes",
    "forward_kinematics",
    "skin",
    "skin_groups",
    "skin_sparse",
    "skinning_transforms",
    "tree_levels",
]


def broadcast_shapes(*shapes: tuple[int, ...] | torch.Size) -> torch.Size:
    """The shape the arguments broadcast to, as ``torch.broadcast_shapes`` gives it; computed by numpy because torch's
    first call imports sympy (0.35-0.7 s measured, paid by every process that poses a body)."""
    return torch.Size(np.broadcast_shapes(*(tuple(s) for s in shapes)))


def tree_levels(parents: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """For each depth >= 1 of the tree, ``(joints, their parents)`` as index tensors."""
    depth = [0] * len(parents)
    for j, p in enumerate(parents):
        depth[j] = 0 if p < 0 else depth[p] + 1
    levels = []
    for d in range(1, max(depth) + 1):
        joints = [j for j in range(len(parents)) if depth[j] == d]
        levels.append((torch.tensor(joints), torch.tensor([parents[j] for j in joints])))
    return levels


def forward_kinematics(
    rel_rotmat: torch.Tensor,
    joints_rest: torch.Tensor,
    levels: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posed joints from rest joints and relative rotations.

    Args:
        rel_rotmat: ``(..., J, 3, 3)`` rotations relative to the parent; joint 0 is the root.
        joints_rest: ``(..., J, 3)`` rest-pose joint locations (broadcast against ``rel_rotmat``).
        levels: :func:`tree_levels` of the model's parents.

    Returns:
        ``glob_rotmat (..., J, 3, 3)`` and posed ``joints (..., J, 3)``, the root joint left at its rest location.
    """
    batch = broadcast_shapes(rel_rotmat.shape[:-3], joints_rest.shape[:-2])
    rel = rel_rotmat.expand(*batch, *rel_rotmat.shape[-3:])
    rest = joints_rest.expand(*batch, *joints_rest.shape[-2:])
    glob = torch.empty_like(rel)
    posed = torch.empty_like(rest)
    glob[..., 0, :, :] = rel[..., 0, :, :]
    posed[..., 0, :] = rest[..., 0, :]
    for joints, parents in levels:
        parent_rot = glob[..., parents, :, :]
        glob[..., joints, :, :] = parent_rot @ rel[..., joints, :, :]
        bone = (rest[..., joints, :] - rest[..., parents, :]).unsqueeze(-1)
        posed[..., joints, :] = posed[..., parents, :] + (parent_rot @ bone).squeeze(-1)
    return glob, posed


def skinning_transforms(
    glob_rotmat: torch.Tensor, joints: torch.Tensor, joints_rest: torch.Tensor
) -> torch.Tensor:
    """Per-joint ``[R | t]`` ``(..., J, 3, 4)`` that maps a rest-pose point skinned to the joint to its posed place."""
    t = joints - (glob_rotmat @ joints_rest.unsqueeze(-1)).squeeze(-1)
    return torch.cat([glob_rotmat, t.unsqueeze(-1)], dim=-1)


def blend(coefficients: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``coefficients (..., K)`` times ``basis (K, N)``: ``(..., N)``."""
    return coefficients @ basis


def skin(vertices: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning.

    Args:
        vertices: ``(B, V, 3)`` rest-pose vertices (shape and pose blend shapes applied).
        weights: ``(V, J)``.
        transforms: ``(B, J, 3, 4)`` from :func:`skinning_transforms`.

    Returns:
        ``(B, V, 3)`` posed vertices.
    """
    B, J = transforms.shape[0], transforms.shape[1]
    # one GEMM: (V, J) @ (J, B*12) -> blended [R | t] per vertex
    flat = transforms.reshape(B, J, 12).permute(1, 0, 2).reshape(J, B * 12)
    blended = (weights @ flat).reshape(-1, B, 12).permute(1, 0, 2)  # (B, V, 12): r00 r01 r02 t0 r10 ...
    x, y, z = vertices[..., 0:1], vertices[..., 1:2], vertices[..., 2:3]
    m = blended.reshape(B, -1, 3, 4)
    return m[..., 0] * x + m[..., 1] * y + m[..., 2] * z + m[..., 3]


def skin_groups(weights: torch.Tensor) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """For each joint with any influence: ``(joint, vertex indices, weights)`` of the vertices it moves."""
    groups = []
    for j in range(weights.shape[1]):
        idx = torch.nonzero(weights[:, j] != 0).squeeze(1)
        if idx.numel():
            groups.append((j, idx, weights[idx, j]))
    return groups


def skin_sparse(
    vertices: torch.Tensor, groups: list[tuple[int, torch.Tensor, torch.Tensor]], transforms: torch.Tensor
) -> torch.Tensor:
    """Linear blend skinning over sparse weights, vertex-major (same result as :func:`skin`).

    The vertex-major layout keeps each vertex's three coordinates for the whole batch in one contiguous row, so the
    per-joint gathers and scatters move whole rows; measured 25-30% faster than the batch-major layout.

    Args:
        vertices: ``(V, 3, B)`` rest-pose vertices, vertex-major.
        groups: :func:`skin_groups` of the ``(V, J)`` weights.
        transforms: ``(J, 3, 4, B)`` per-joint ``[R | t]``, joint-major.

    Returns:
        ``(V, 3, B)``.
    """
    out = torch.zeros_like(vertices)
    for j, idx, w in groups:
        block = vertices[idx]  # (n, 3, B)
        transform = transforms[j]  # (3, 4, B)
        moved = (transform[None, :, :3] * block[:, None]).sum(2) + transform[None, :, 3]
        out.index_add_(0, idx, moved * w[:, None, None])  # in place on a fresh tensor: autograd records it
    return out
