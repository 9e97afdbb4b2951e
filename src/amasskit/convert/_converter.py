"""The converter: source parameters -> source mesh -> deformation transfer -> the target model's parameters.

:class:`Converter` is built once from the two body models and the transfer between their meshes. For each batch it
runs the source model, maps its vertices through the transfer, starts the target from the source pose copied through
the joint map (:data:`JOINT_MAPS`; joints without a counterpart, such as SMPL-X's jaw and eyes, at rest) and the
source shape through a linear map between the shape spaces, then fits (:mod:`amasskit.convert._fit`) every frame's
pose and the sequence's one shape together by Levenberg-Marquardt (the shape through the Schur complement of the pose
blocks, so poses and shape move jointly). Every frame reports its vertex errors (mean, max, per part), joint error and
iterations.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import torch

from .._util.paths import user_path
from .._util.sampling import even_indices
from ..body import BodyModel
from ..conventions import ModelType
from ..errors import InvalidArgumentError
from ..rotations import rotmat_to_rotvec, rotvec_to_rotmat
from ..sequence import Gender, Sequence
from ._fit import FitResult, FitState, Scratch, TargetModel, evaluate, fit, frames_last
from ._transfer import TransferMatrix, find_mask_file, find_transfer_file, load_mask, load_transfer, mesh_of

__all__ = ["JOINT_MAPS", "RUN_OPTIONS", "SCHEDULES", "ConversionResult", "Converter"]

logger = logging.getLogger(__name__)


def _pairs(*spans: tuple[int, int, int]) -> tuple[tuple[int, int], ...]:
    return tuple((s + i, t + i) for s, t, n in spans for i in range(n))


JOINT_MAPS: Final[dict[tuple[ModelType, ModelType], tuple[tuple[int, int], ...]]] = {
    (ModelType.SMPLH, ModelType.SMPLX): _pairs((0, 0, 22), (22, 25, 15), (37, 40, 15)),
    (ModelType.SMPLX, ModelType.SMPLH): _pairs((0, 0, 22), (25, 22, 15), (40, 37, 15)),
    (ModelType.SMPL, ModelType.SMPLX): _pairs((0, 0, 22)),
    (ModelType.SMPLX, ModelType.SMPL): _pairs((0, 0, 22)),
    (ModelType.SMPL, ModelType.SMPLH): _pairs((0, 0, 22)),
    (ModelType.SMPLH, ModelType.SMPL): _pairs((0, 0, 22)),
}
"""``(source joint, target joint)`` pairs whose rotations carry over: the body (0-21) always; SMPL+H's hands
(22-36, 37-51) are SMPL-X's 25-39 and 40-54. SMPL's two hand joints, SMPL-X's jaw and eyes have no counterpart."""

RUN_OPTIONS: Final = ("max_iterations", "tolerance", "chunk", "fit_betas", "shape_frames")
"""A :class:`Converter`'s run-time settings: nothing it builds depends on them, so :meth:`Converter.with_options`
changes them on a copy that shares the rest."""

SCHEDULES: Final[dict[str, dict[str, Any]]] = {
    "accurate": {"max_iterations": 4, "tolerance": 1e-6},
    "fast": {"max_iterations": 2, "tolerance": 1e-6},
}
"""Named fit schedules (``Converter(..., **SCHEDULES["fast"])``; ``--schedule`` on the command line): Levenberg-
Marquardt iterations over every frame's pose and the sequence's shape together. ``accurate``, the default, ends within
0.1 mm of a fit run to convergence; ``fast`` stops after two iterations, about 0.15 mm further, still far more accurate
than smplfitter's converter (benchmarks/RESULTS.md)."""

_LONG_POSE_PHASE: Final = 2
"""For sequences past ``shape_frames``: the pose fit that follows the shape fit takes this many times
``max_iterations`` (frames on their own converge more slowly than in the joint fit; measured: within 0.04 mm of the
joint fit over all frames, instead of up to +0.05 mm with the same count)."""

_PARTS: Final[dict[str, tuple[str, ...]]] = {
    "hands": ("wrist", "index", "middle", "pinky", "ring", "thumb", "hand"),
    "head": ("head", "jaw", "eye", "neck"),
    "feet": ("ankle", "foot"),
}


@dataclass(frozen=True)
class ConversionResult:
    """Converted parameters and per-frame errors (metres) of ``N`` poses or frames.

    Attributes:
        rel_rotvec: ``(N, J, 3)`` local rotations of every target joint (root first), axis-angle.
        trans: ``(N, 3)`` translation in the AMASS convention (pelvis at ``trans + J_pelvis(betas)``).
        betas: ``(S,)`` the one shape of the batch.
        vertex_error_mean, vertex_error_max: ``(N,)`` over the fitted (masked) vertices.
        part_error_mean: part name (hands, head, feet) -> ``(N,)`` mean error of its vertices.
        joint_error_mean: ``(N,)`` mean distance of the body joints (0-21) to the source's.
        iterations: ``(N,)`` Levenberg-Marquardt iterations.
        vertex_error_initial: ``(N,)`` mean vertex error of the starting guess (the fit never ends above it).
    """

    rel_rotvec: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    vertex_error_mean: np.ndarray
    vertex_error_max: np.ndarray
    part_error_mean: dict[str, np.ndarray] = field(default_factory=dict)
    joint_error_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    iterations: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    vertex_error_initial: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def concatenate(cls, parts: list[ConversionResult]) -> ConversionResult:
        """The results of consecutive batches of poses as one (the shape is the first batch's)."""

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        return cls(
            rel_rotvec=cat("rel_rotvec"),
            trans=cat("trans"),
            betas=parts[0].betas,
            vertex_error_mean=cat("vertex_error_mean"),
            vertex_error_max=cat("vertex_error_max"),
            part_error_mean={
                k: np.concatenate([p.part_error_mean[k] for p in parts]) for k in parts[0].part_error_mean
            },
            joint_error_mean=cat("joint_error_mean"),
            iterations=cat("iterations"),
            vertex_error_initial=cat("vertex_error_initial"),
        )

    def summary(self) -> dict[str, float]:
        """Means over the frames (millimetres)."""
        out = {
            "vertex_error_mean_mm": float(self.vertex_error_mean.mean() * 1000),
            "vertex_error_max_mm": float(self.vertex_error_max.max() * 1000),
            "joint_error_mean_mm": float(self.joint_error_mean.mean() * 1000)
            if len(self.joint_error_mean)
            else 0.0,
            "iterations_mean": float(self.iterations.mean()) if len(self.iterations) else 0.0,
        }
        out.update({f"{k}_error_mean_mm": float(v.mean() * 1000) for k, v in self.part_error_mean.items()})
        return out


class Converter:
    """Converts poses and sequences from one SMPL-family model to another (see the module docstring).

    Args:
        source, target: the body models (any gender; AMASS's flat hand mean).
        transfer: the map from the source mesh to the target mesh (:func:`~amasskit.convert.load_transfer`).
        mask: target vertex ids to fit (default: all; :func:`~amasskit.convert.load_mask` for SMPL-X's).
        num_betas: target shape coefficients fitted (16, as AMASS's SMPL-X release).
        max_iterations: Levenberg-Marquardt iterations at most (:data:`SCHEDULES`).
        chunk: frames evaluated at once (memory: about 1 MB per frame of a chunk for SMPL-X, kept by the converter
            between calls, per thread, for the next; besides, while the shape is fitted, every frame keeps about
            1.4 MB: its target vertices, errors, float32 Gauss-Newton matrix and Cholesky factor; measured 1.45 GB
            for 1,024 frames, the most ``shape_frames`` lets in by default; longer sequences about 0.4 MB per
            further frame: 2.3 GB for 3,000 frames).
        fit_betas: fit the target shape; False keeps it at zero (pose lists converted with zero shape), and then
            every frame is fitted on its own and stops on its own.
        tolerance: stop when an iteration lowers the squared error by less than this fraction (of the sequence's,
            or without a shape to fit, of the frame's).
        shape_frames: a sequence longer than this has its shape fitted (with the poses) on this many frames spread
            evenly over it, then every frame's pose with that shape: memory stays bounded (see ``chunk``).

    Raises:
        InvalidArgumentError: a transfer whose sizes do not fit the models, or no joint map for the pair.
    """

    def __init__(
        self,
        source: BodyModel,
        target: BodyModel,
        transfer: TransferMatrix,
        *,
        mask: np.ndarray | None = None,
        num_betas: int = 16,
        max_iterations: int = 4,
        chunk: int = 256,
        fit_betas: bool = True,
        tolerance: float = 1e-6,
        shape_frames: int = 1024,
    ) -> None:
        if transfer.source_vertices != source.num_vertices or transfer.target_vertices != target.num_vertices:
            raise InvalidArgumentError(
                f"the transfer maps {transfer.source_vertices} to {transfer.target_vertices} vertices; the models "
                f"have {source.num_vertices} ({source.kind.value}) and {target.num_vertices} ({target.kind.value})"
            )
        if (source.kind, target.kind) not in JOINT_MAPS and source.kind is not target.kind:
            raise InvalidArgumentError(f"no joint map from {source.kind.value} to {target.kind.value}")
        self.source, self.target, self.transfer = source, target, transfer
        self.max_iterations, self.tolerance = max_iterations, tolerance
        if shape_frames < 1:
            raise InvalidArgumentError(f"shape_frames must be at least 1, got {shape_frames}")
        self.shape_frames = shape_frames
        self.chunk, self.fit_betas = chunk, fit_betas
        self.num_betas = min(num_betas, target.num_betas)
        self.fit_model = TargetModel.build(target, mask, num_betas=self.num_betas)
        if source.kind is target.kind:
            pairs = tuple((j, j) for j in range(source.num_joints))
        else:
            pairs = JOINT_MAPS[(source.kind, target.kind)]
        self.joint_map = pairs
        self._parts = self._part_rows()
        self._scratches = threading.local()
        self._shape_map = self._shape_space_map()

    @classmethod
    def from_folder(
        cls,
        source: ModelType | str,
        target: ModelType | str,
        *,
        model_dir: str | os.PathLike[str] | None = None,
        source_gender: Gender | str | None = None,
        target_gender: Gender | str | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        **options: Any,
    ) -> Converter:
        """Models, transfer file and (for SMPL-X) mask from a model folder (see :mod:`amasskit.convert`).

        Args:
            source_gender, target_gender: the models' genders. None (the default), as ``amasskit convert`` does:
                :meth:`convert_sequence` takes each sequence's own gender for both (the gendered models of a folder
                are loaded the first time a sequence of that gender comes, a few seconds, and kept), and
                :meth:`convert_poses` the neutral models. Give both to fix them (``"neutral"`` for the neutral
                models whatever the sequence).

        The first conversion of a converter also compiles and warms up its fitting kernels: it takes a few seconds
        more than the later ones, whose speed the figures in the README give.
        """
        src, dst = ModelType.parse(source), ModelType.parse(target)
        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            raise InvalidArgumentError(f"device {device!r}: CUDA is not available here (use 'cpu')")
        model_dir = None if model_dir is None else user_path(model_dir)
        src_model = BodyModel.load(
            src, source_gender or Gender.NEUTRAL, model_dir=model_dir, device=device, dtype=dtype
        )
        dst_model = BodyModel.load(
            dst,
            target_gender or source_gender or Gender.NEUTRAL,
            model_dir=model_dir,
            device=device,
            dtype=dtype,
            dmpl=False,
        )
        if mesh_of(src) == mesh_of(dst):
            transfer = TransferMatrix.identity(src_model.num_vertices)
        else:
            path = find_transfer_file(src, dst, model_dir=model_dir)
            transfer = load_transfer(path, source_vertices=src_model.num_vertices)
        mask = None
        if dst is ModelType.SMPLX and "mask" not in options:
            mask_file = find_mask_file(model_dir)
            mask = None if mask_file is None else load_mask(mask_file, num_vertices=dst_model.num_vertices)
        converter = cls(src_model, dst_model, transfer, **({"mask": mask} | options))
        if source_gender is None or target_gender is None:  # each sequence's own gender
            converter._by_gender = {
                "build": dict(
                    source=src, target=dst, model_dir=model_dir, device=device, dtype=dtype, **options
                ),
                "source_gender": source_gender,
                "target_gender": target_gender,
                "converters": {},
            }
        return converter

    _by_gender: dict[str, Any] | None = None

    def _for_gender(self, gender: Gender) -> Converter:
        """The converter for a sequence of ``gender``: this one, or (made by :meth:`from_folder` without genders)
        the one of that gender's models, loaded once."""
        if self._by_gender is None:
            return self
        source_gender = self._by_gender["source_gender"] or gender
        target_gender = self._by_gender["target_gender"] or source_gender
        if (Gender.parse(source_gender), Gender.parse(target_gender)) == (
            self.source.gender,
            self.target.gender,
        ):
            return self
        genders = (Gender.parse(source_gender).value, Gender.parse(target_gender).value)
        key = (*genders, self.num_betas)
        made = self._by_gender["converters"]
        if key not in made:
            logger.info("converter: loading the %s -> %s models", *genders)
            made[key] = Converter.from_folder(
                **(self._by_gender["build"] | {"num_betas": self.num_betas}),
                source_gender=genders[0],
                target_gender=genders[1],
            )
        # with this converter's run-time settings now (a copy may have changed them), not those it was made with
        return made[key].with_options(**{name: getattr(self, name) for name in RUN_OPTIONS})

    def with_options(self, **options: Any) -> Converter:
        """A copy of this converter with other run-time settings (:data:`RUN_OPTIONS`: ``max_iterations``,
        ``tolerance``, ``chunk``, ``fit_betas``, ``shape_frames``), sharing its models, transfer and fitting arrays:
        nothing is loaded or built again (``converter.with_options(**SCHEDULES["fast"])``).

        Raises:
            InvalidArgumentError: an option that is not a run-time setting (``num_betas`` or ``mask`` need another
                converter), or ``shape_frames`` under 1.
        """
        unknown = sorted(set(options) - set(RUN_OPTIONS))
        if unknown:
            raise InvalidArgumentError(
                f"{', '.join(unknown)}: not a run-time setting of a converter ({', '.join(RUN_OPTIONS)}); "
                "make another converter for it"
            )
        if options.get("shape_frames", 1) < 1:
            raise InvalidArgumentError(f"shape_frames must be at least 1, got {options['shape_frames']}")
        out = copy.copy(self)
        for name, value in options.items():
            setattr(out, name, value)
        return out

    # ------------------------------------------------------------------------------------------------ pieces

    def _part_rows(self) -> dict[str, torch.Tensor]:
        from ..topology import SMPL_JOINT_NAMES, SMPLH_JOINT_NAMES, SMPLX_JOINT_NAMES

        names = {
            ModelType.SMPL: SMPL_JOINT_NAMES,
            ModelType.SMPLH: SMPLH_JOINT_NAMES,
            ModelType.SMPLX: SMPLX_JOINT_NAMES,
        }[self.target.kind]
        dominant = self.fit_model.skin_joint[:, 0].cpu().numpy()
        out = {}
        for part, keys in _PARTS.items():
            joints = [j for j, n in enumerate(names) if any(k in n.lower() for k in keys)]
            rows = np.flatnonzero(np.isin(dominant, joints))
            if len(rows):
                out[part] = torch.as_tensor(rows, device=self.target.device)
        return out

    def _shape_space_map(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A (S_t, S_s), b (S_t,))`` with ``beta_t = A beta_s + b`` the least-squares match of the rest meshes
        through the transfer (precomputed once)."""
        src, fm = self.source, self.fit_model
        V = src.num_vertices
        S_s = src.shape_basis.shape[0]
        T_s = src.v_template.double().cpu().numpy()
        basis_s = src.shape_basis.double().cpu().numpy().reshape(S_s, V, 3)
        mask = fm.mask.cpu().numpy()
        moved_T = self.transfer.apply(T_s)[mask]
        moved_B = np.stack([self.transfer.apply(b)[mask] for b in basis_s], -1)  # (Vm, 3, S_s)
        St = fm.shape_basis.double().cpu().numpy().reshape(fm.num_betas, -1).T  # (Vm*3, S_t)
        Tt = fm.template.double().cpu().numpy().reshape(-1)
        pinv = np.linalg.pinv(St)
        A = pinv @ moved_B.reshape(-1, S_s)
        b = pinv @ (moved_T.reshape(-1) - Tt)
        dev, dt = self.target.device, self.target.dtype
        return torch.as_tensor(A, device=dev, dtype=dt), torch.as_tensor(b, device=dev, dtype=dt)

    def initial_betas(self, source_betas: torch.Tensor | np.ndarray | None) -> torch.Tensor:
        A, b = self._shape_map
        if source_betas is None:
            return b.clone()
        x = torch.as_tensor(
            np.asarray(source_betas) if not isinstance(source_betas, torch.Tensor) else source_betas,
            device=A.device,
            dtype=A.dtype,
        )[: A.shape[1]]
        return A[:, : len(x)] @ x + b

    # ------------------------------------------------------------------------------------------------ converting

    def convert_poses(
        self,
        rel_rotvec: Any,
        *,
        betas: Any = None,
        trans: Any = None,
        dmpls: Any = None,
    ) -> ConversionResult:
        """Convert ``N`` poses of the source model that share one shape (one sequence, or a pose list).

        Args:
            rel_rotvec: ``(N, J_source, 3)`` local rotations, root first, axis-angle.
            betas: ``(S_source,)`` source shape (default zeros).
            trans: ``(N, 3)`` (default zeros).
            dmpls: ``(N, 8)`` SMPL+H soft tissue, where the source model has DMPLs.

        Raises:
            InvalidArgumentError: a pose array of the wrong shape, or a value that is not finite.
        """
        src, dst, fm = self.source, self.target, self.fit_model
        dev, dt = dst.device, dst.dtype
        pose = torch.as_tensor(np.asarray(rel_rotvec), device=dev, dtype=dt)
        if pose.ndim != 3 or pose.shape[1:] != (src.num_joints, 3):
            raise InvalidArgumentError(
                f"rel_rotvec must be (N, {src.num_joints}, 3), got {tuple(pose.shape)}"
            )
        N = pose.shape[0]
        for name, value in (("rel_rotvec", rel_rotvec), ("betas", betas), ("trans", trans), ("dmpls", dmpls)):
            if value is not None and not np.isfinite(np.asarray(value, dtype=np.float64)).all():
                bad = np.argwhere(~np.isfinite(np.asarray(value, dtype=np.float64)))[0].tolist()
                raise InvalidArgumentError(f"{name} is not finite (first at index {bad}): nothing converted")
        src_betas = None if betas is None else torch.as_tensor(np.asarray(betas), device=dev, dtype=dt)
        src_trans = (
            torch.zeros(N, 3, device=dev, dtype=dt)
            if trans is None
            else torch.as_tensor(np.asarray(trans), device=dev, dtype=dt)
        )
        src_dmpls = None
        if dmpls is not None and src.num_dmpls:
            src_dmpls = torch.as_tensor(np.asarray(dmpls), device=dev, dtype=dt)
        with torch.no_grad():
            goals, states, src_joints = [], [], []
            beta = self.initial_betas(src_betas) if self.fit_betas else torch.zeros_like(self._shape_map[1])
            J0_src = self._source_pelvis(src_betas)
            J0_dst = fm.rest_joints(beta)[0]
            s_idx = [s for s, _ in self.joint_map]
            t_idx = [t for _, t in self.joint_map]
            for start in range(0, N, self.chunk):
                sl = slice(start, start + self.chunk)
                R_src = rotvec_to_rotmat(pose[sl])
                shaped = src.with_shape(src_betas, dmpls=None if src_dmpls is None else src_dmpls[sl])
                posed = shaped.with_rotmats(R_src, trans=src_trans[sl])
                goals.append(self.transfer.apply(posed.vertices)[:, fm.mask])
                src_joints.append(posed.joints[:, :22])
                rel = torch.eye(3, device=dev, dtype=dt).repeat(len(R_src), dst.num_joints, 1, 1)
                rel[:, t_idx] = R_src[:, s_idx]
                states.append(FitState(rel, src_trans[sl] + (J0_src - J0_dst)))
            if self.fit_betas and self.shape_frames < N:
                fitted = self._fit_long(beta, goals, states)
            else:
                fitted = fit(
                    fm,
                    beta,
                    goals,
                    states,
                    fit_shape=self.fit_betas,
                    max_iterations=self.max_iterations,
                    tolerance=self.tolerance,
                    scratch=self._scratch(),
                )
            return self._result(fitted, states, torch.cat(src_joints))

    def _fit_long(self, beta: torch.Tensor, goals: list[torch.Tensor], states: list[FitState]) -> FitResult:
        """A sequence longer than ``shape_frames``: the shape and the poses fitted together on ``shape_frames``
        frames spread evenly over it, then every frame's pose with that shape (frames on their own, chunk by chunk), so
        the normal equations kept between iterations stay bounded whatever the length."""
        fm = self.fit_model
        goal_all = torch.cat(goals)
        rel_all = torch.cat([s.rel for s in states])
        trans_all = torch.cat([s.trans for s in states])
        N = len(goal_all)
        pick = torch.as_tensor(even_indices(N, self.shape_frames), device=goal_all.device)
        sub_goals, sub_states = [], []
        for start in range(0, len(pick), self.chunk):
            rows = pick[start : start + self.chunk]
            sub_goals.append(goal_all[rows])
            sub_states.append(FitState(rel_all[rows].clone(), trans_all[rows].clone()))
        shared = fit(
            fm,
            beta,
            sub_goals,
            sub_states,
            fit_shape=True,
            max_iterations=self.max_iterations,
            tolerance=self.tolerance,
            scratch=self._scratch(),
        )
        initial = torch.cat(
            [
                evaluate(fm, beta, s, frames_last(g)).error().mean(1)
                for g, s in zip(goals, states, strict=True)
            ]
        )
        poses = fit(
            fm,
            shared.betas,
            goals,
            states,
            fit_shape=False,
            max_iterations=_LONG_POSE_PHASE * self.max_iterations,
            tolerance=self.tolerance,
            scratch=self._scratch(),
        )
        return dataclasses.replace(
            poses, initial_error=initial, iterations=poses.iterations + shared.iterations[0]
        )

    def _scratch(self) -> Scratch:
        """This thread's working buffers, kept between conversions (fresh ones are mapped in page by page by the
        operating system on every call: measured 5-10% of a conversion)."""
        scratch = getattr(self._scratches, "value", None)
        if scratch is None:
            scratch = self._scratches.value = Scratch()
        return scratch

    def _source_pelvis(self, betas: torch.Tensor | None) -> torch.Tensor:
        shaped = self.source.with_shape(betas)
        return shaped.joints_rest[..., 0, :]

    def _result(
        self, fitted: FitResult, states: list[FitState], src_joints: torch.Tensor
    ) -> ConversionResult:
        err = fitted.vertex_error
        # AMASS's convention (the pelvis at trans + J_pelvis(betas)) is the fit's: the root sits at J_0 + t
        t_out = torch.cat([s.trans for s in states])
        parts = {
            name: err[:, rows].mean(1).cpu().numpy().astype(np.float64) for name, rows in self._parts.items()
        }
        joint_err = (fitted.joints[:, :22] - src_joints).norm(dim=-1).mean(-1)
        return ConversionResult(
            rel_rotvec=torch.cat([rotmat_to_rotvec(s.rel) for s in states]).cpu().numpy().astype(np.float64),
            trans=t_out.cpu().numpy().astype(np.float64),
            betas=fitted.betas.cpu().numpy().astype(np.float64),
            vertex_error_mean=err.mean(1).cpu().numpy().astype(np.float64),
            vertex_error_max=err.amax(1).cpu().numpy().astype(np.float64),
            part_error_mean=parts,
            joint_error_mean=joint_err.cpu().numpy().astype(np.float64),
            iterations=fitted.iterations.cpu().numpy(),
            vertex_error_initial=fitted.initial_error.cpu().numpy().astype(np.float64),
        )

    def convert_sequence(self, seq: Sequence) -> tuple[Sequence, ConversionResult]:
        """A motion sequence of the source model as one of the target model (SMPL+H <-> SMPL-X), with its report.

        Raises:
            InvalidArgumentError: the sequence is not of the source model, or the target is not a sequence model.
        """
        if seq.model is not self.source.kind:
            raise InvalidArgumentError(
                f"a {seq.model.value} sequence, but the converter's source is {self.source.kind.value}"
            )
        gendered = self._for_gender(seq.gender)
        if gendered is not self:
            return gendered.convert_sequence(seq)
        if self.target.kind not in (ModelType.SMPLH, ModelType.SMPLX):
            raise InvalidArgumentError(
                "sequences are SMPL+H or SMPL-X; convert SMPL targets with convert_poses"
            )
        src = self.source
        # the release's flat layout is the model's joint order (root, body, [jaw, eyes,] hands)
        pose = seq.to_flat().reshape(seq.num_frames, -1, 3).astype(np.float64)
        if pose.shape[1] != src.num_joints:
            raise InvalidArgumentError(
                f"the sequence has {pose.shape[1]} joints; the source model {src.num_joints}"
            )
        betas = seq.betas[: src.num_betas].astype(np.float64)
        result = self.convert_poses(
            pose, betas=betas, trans=seq.trans.astype(np.float64), dmpls=seq.dmpls if src.num_dmpls else None
        )
        rv = result.rel_rotvec.astype(seq.dtype)
        out = Sequence.from_flat(
            rv.reshape(len(rv), -1),
            trans=result.trans,
            betas=result.betas,
            gender=self.target.gender,
            fps=seq.fps,
            model=self.target.kind,
            provenance=seq.provenance,
            dtype=seq.dtype,
        )
        return out, result
