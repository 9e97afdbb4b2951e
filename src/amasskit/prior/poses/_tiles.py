"""A clean pose set prepared for the exact search (:class:`Tiles`): the poses ordered so that consecutive runs of
``tile`` poses are alike (the leaves of a principal-axis tree), each tile's per-joint balls and angles, the first
stage's products (:mod:`._products`) and the per-joint second stage's layout (the compiled kernel's blocks of 16, or
joint-major float32 for torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...errors import InvalidArgumentError
from . import _kernels
from ._products import CentredProducts, FirstStage, Int8Products

__all__ = ["Tiles", "tile_order"]


@dataclass(frozen=True, eq=False)
class Tiles:
    """The clean poses ``poses (N, J, 4)`` (float32, ``w >= 0``; kept as given when already float32, contiguous and
    with every ``w >= 0``, so that a memory map stays one) in tiles of ``tile`` consecutive poses of :attr:`order`.

    Attributes:
        centres: ``(T, J, 4)`` per tile and joint, the mean; radii ``(T, J)`` the largest ``|x_j - m_j|``.
        norms: ``(T,)`` the largest ``|X|`` (4J-vector) in each tile; ball_radii ``(T,)`` the largest ``|X - M|``.
        half_angles: ``(T, J)`` the largest half-angle ``atan2(|v|, w)`` of each joint in each tile.
        joint_norms: ``(T, J)`` the largest ``|x_j|`` in each tile; norm_error the largest ``||x_j| - 1|``.
        order: ``(N,)`` int64, the clean pose (its id in ``poses``) at each position of the tiles.
        flat: ``(N, 4J)`` float32 on the device, in tile order.
        centre: ``(4J,)`` float64, the mean pose; extent the largest ``|X - centre|``.
        joint_order: ``(J,)`` the joints, most varied first (the kernel adds them in this order).
        first_stage: the first stage's products (:class:`Int8Products` on the CPU, else :class:`CentredProducts`).
        blocks: the compiled second stage's poses in blocks of 16 (numba, CPU), or None.
        joint_major: else ``(J, 4, N)`` float32 on the device for the torch second stage.
    """

    poses: np.ndarray
    tile: int
    centres: np.ndarray
    radii: np.ndarray
    norms: np.ndarray
    ball_radii: np.ndarray
    half_angles: np.ndarray
    joint_norms: np.ndarray
    norm_error: float
    order: np.ndarray
    flat: torch.Tensor
    centre: np.ndarray
    extent: float
    joint_order: np.ndarray
    first_stage: FirstStage
    blocks: np.ndarray | None
    joint_major: torch.Tensor | None

    @property
    def size(self) -> int:
        return int(self.poses.shape[0])

    @property
    def joints(self) -> int:
        return int(self.poses.shape[1])

    @classmethod
    def build(
        cls,
        poses: np.ndarray,
        *,
        tile: int = 1024,
        device: str | torch.device = "cpu",
        products: str = "auto",
        joint_stage: str = "auto",
    ) -> Tiles:
        """See :class:`~amasskit.prior.PoseIndex` for the options.

        Raises: InvalidArgumentError: not ``(N, J, 4)``, empty, or not finite, an unknown ``products`` or
        ``joint_stage``, or one this machine cannot run."""
        poses = np.asarray(poses)
        if poses.ndim != 3 or poses.shape[-1] != 4 or len(poses) == 0:
            raise InvalidArgumentError(f"clean poses must be a non-empty (N, J, 4) array, got {poses.shape}")
        if poses.dtype != np.float32 or not poses.flags.c_contiguous:
            poses = np.ascontiguousarray(poses, dtype=np.float32)
        if (poses[..., 3] < 0).any():  # the bounds take w >= 0; the distances do not depend on the sign
            poses = np.where(poses[..., 3:] < 0, -poses, poses).astype(np.float32)
        if tile < 1:
            raise InvalidArgumentError(f"tile must be at least 1, got {tile}")
        if products not in ("auto", "int8", "float32"):
            raise InvalidArgumentError(f"products must be auto, int8 or float32, got {products!r}")
        if joint_stage not in ("auto", "numba", "torch"):
            raise InvalidArgumentError(f"joint_stage must be auto, numba or torch, got {joint_stage!r}")
        on_cpu = torch.device(device).type == "cpu"
        if products == "int8" and not on_cpu:
            raise InvalidArgumentError("int8 products run on the CPU only; use products='float32' on a GPU")
        kernel_fits = on_cpu and tile % _kernels.LANES == 0
        if joint_stage == "numba" and not (kernel_fits and _kernels.available()):
            raise InvalidArgumentError(
                "joint_stage='numba' needs numba (pip install 'amasskit[search]'), the CPU and a tile that is a "
                f"multiple of {_kernels.LANES}"
            )
        use_kernel = joint_stage != "torch" and kernel_fits and _kernels.available()
        N, J = poses.shape[:2]
        for b0 in range(0, N, 65536):
            if not np.isfinite(poses[b0 : b0 + 65536]).all():
                bad = b0 + int(np.flatnonzero(~np.isfinite(poses[b0 : b0 + 65536]).all((1, 2)))[0])
                raise InvalidArgumentError(f"clean pose {bad} holds non-finite values")
        order = tile_order(poses.reshape(N, 4 * J), tile)
        poses_in_order = poses[order]
        geometry = _tile_geometry(poses_in_order, tile)
        centre = geometry["centre"]
        grow = 1 + 1e-12  # the float64 rounding of the bounds themselves
        flat = torch.from_numpy(poses_in_order.reshape(N, 4 * J)).to(device)
        if use_kernel:
            blocks, joint_major = _kernels.to_blocks(poses_in_order), None
        else:
            blocks = None
            joint_major = torch.from_numpy(np.ascontiguousarray(poses_in_order.transpose(1, 2, 0))).to(device)
        # unit quaternions with w >= 0: a joint's spread about its mean is 1 - |mean|^2, largest first
        joint_order = np.argsort(np.linalg.norm(centre.reshape(J, 4), axis=1), kind="stable")
        in_order = poses_in_order.reshape(N, 4 * J)
        first_stage: FirstStage | None = (
            Int8Products.build(in_order, tile, centre) if products != "float32" and on_cpu else None
        )
        if first_stage is None:
            first_stage = CentredProducts.build(in_order, tile, centre, device)
        del poses_in_order, in_order
        return cls(
            poses=poses,
            tile=tile,
            centres=geometry["centres"],
            radii=geometry["radii"] * grow + 1e-12,
            norms=geometry["norms"] * grow,
            ball_radii=geometry["ball"] * grow + 1e-12,
            half_angles=geometry["half"] * grow + 1e-12,
            joint_norms=geometry["jnorm"] * grow,
            norm_error=float(geometry["norm_error"]),
            order=order,
            flat=flat,
            centre=centre,
            extent=float(geometry["extent"]) * grow + 1e-12,
            joint_order=joint_order,
            first_stage=first_stage,
            blocks=blocks,
            joint_major=joint_major,
        )


def _tile_geometry(poses_in_order: np.ndarray, tile: int) -> dict[str, Any]:
    """Per tile of ``poses_in_order (N, J, 4)`` (float64 sums, in tiles: memory stays bounded for any set): the
    per-joint ``centres (T, J, 4)`` and ``radii (T, J)``, the largest norm ``norms (T,)``, ball radius ``ball (T,)``,
    half-angles ``half (T, J)`` and joint norms ``jnorm (T, J)``; over the set, the mean pose ``centre (4J,)``, the
    largest distance from it ``extent`` and the largest ``||x_j| - 1|`` ``norm_error`` (before any rounding margin)."""
    N, J = poses_in_order.shape[:2]
    starts = np.arange(0, N, tile)
    ball = np.empty(len(starts))
    centres = np.empty((len(starts), J, 4))
    radii = np.empty((len(starts), J))
    norms = np.empty(len(starts))
    half = np.empty((len(starts), J))
    jnorm = np.empty((len(starts), J))
    norm_error = extent = 0.0
    centre = np.zeros(4 * J)
    for s in starts:
        centre += poses_in_order[s : s + tile].reshape(-1, 4 * J).astype(np.float64).sum(0)
    centre /= N
    for t, s in enumerate(starts):
        x = poses_in_order[s : s + tile].astype(np.float64)
        centres[t] = x.mean(0)
        radii[t] = np.sqrt(((x - centres[t]) ** 2).sum(-1)).max(0)
        norms[t] = np.sqrt((x * x).sum((1, 2))).max()
        ball[t] = np.sqrt(((x - centres[t]) ** 2).sum((1, 2))).max()
        half[t] = np.arctan2(np.sqrt((x[..., :3] ** 2).sum(-1)), x[..., 3]).max(0)
        xn = np.sqrt((x * x).sum(-1))
        extent = max(extent, float(np.sqrt(((x.reshape(len(x), -1) - centre) ** 2).sum(1)).max()))
        jnorm[t] = xn.max(0)
        norm_error = max(norm_error, float(np.abs(xn - 1).max()))
    return {
        "centres": centres,
        "radii": radii,
        "norms": norms,
        "ball": ball,
        "half": half,
        "jnorm": jnorm,
        "centre": centre,
        "extent": extent,
        "norm_error": norm_error,
    }


def tile_order(flat: np.ndarray, tile: int) -> np.ndarray:
    """An order of the poses ``flat (N, D)`` whose consecutive runs of ``tile`` hold poses that are alike: the
    leaves of a tree that splits each node at (a multiple of ``tile`` next to) the median of its projections on its
    principal axis (``(N,)`` int64; deterministic). Only the speed of a search depends on it: a tile whose poses lie
    in a small ball is skipped by a query far from it."""
    N = len(flat)
    order = np.arange(N)
    todo = [(0, N)]
    block = 65536  # the node's poses are read in blocks: memory stays bounded for any set
    while todo:
        a, b = todo.pop()
        if b - a <= tile:
            continue
        ids = order[a:b]
        mean = sum(
            flat[ids[s : s + block]].sum(0, dtype=np.float64) for s in range(0, len(ids), block)
        ) / len(ids)
        cov = np.zeros((flat.shape[1], flat.shape[1]))
        for s in range(0, len(ids), block):
            x = flat[ids[s : s + block]] - mean
            cov += x.T @ x
        axis = np.linalg.eigh(cov)[1][:, -1]
        proj = np.concatenate([(flat[ids[s : s + block]] - mean) @ axis for s in range(0, len(ids), block)])
        half = max(tile, ((b - a) // 2 + tile // 2) // tile * tile)
        # only the split matters (the halves are split in turn): a partition, not a sort
        order[a:b] = ids[np.argpartition(proj, half)]
        todo += [(a, a + half), (a + half, b)]
    return order
