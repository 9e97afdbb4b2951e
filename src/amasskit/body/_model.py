"""SMPL-family body models: a staged, immutable API over the pure functions of :mod:`amasskit.body._lbs`.

::

    model = BodyModel.load("smplh", "female", model_dir=...)       # arrays on a device, in a dtype
    shaped = model.with_shape(betas)                                 # (..., S); DMPLs and expressions too
    posed = shaped.with_pose(root_orient=..., pose_body=..., pose_hand=..., trans=...)
    posed.joints      # (..., J, 3): forward kinematics only, no vertex touched
    posed.vertices    # (..., V, 3): full skinning, computed when asked for

Joints depend only on the shape, so the model precomputes the joint template and its shape basis
(``J_regressor @ v_template`` and ``J_regressor @ shapedirs``): the joints-only path never forms a vertex. Leading
batch dimensions of shape and pose broadcast. Output frame: the model frame rotated by ``root_orient`` and moved by
``trans`` (AMASS's Z-up world for AMASS parameters).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..conventions import ROTATION_SHAPES, ModelType, Rotation
from ..errors import InvalidArgumentError, SequenceError
from ..rotations import to_rotmat
from ..sequence import Gender, Sequence
from ._files import ModelData, load_model_data
from ._lbs import (
    blend,
    broadcast_shapes,
    forward_kinematics,
    skin,
    skin_groups,
    skin_sparse,
    skinning_transforms,
    tree_levels,
)

__all__ = ["BodyModel", "BodyModelModule", "PosedBody", "ShapedBody"]

PoseInput = np.ndarray | torch.Tensor | list[Any] | tuple[Any, ...] | None
"""A pose part: a numpy array, a tensor or nested numbers; ``None`` leaves the part at rest."""

_VERTEX_CHUNK = 512
"""Poses skinned at once when vertices are asked for: bounds memory (a 4,096-pose batch would otherwise hold over a
gigabyte of per-vertex transforms) at no loss of speed."""


def _tensor(value: Any, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(device=like.device, dtype=like.dtype)
    return torch.as_tensor(np.asarray(value), device=like.device, dtype=like.dtype)


class BodyModel:
    """A loaded body model (immutable). Make one with :meth:`load` or :meth:`from_data`.

    Attributes:
        kind, gender: what it is.
        num_joints, num_vertices, num_betas, num_expressions, num_dmpls: its sizes.
        faces: ``(F, 3)`` long tensor.
        parents: the kinematic tree.
    """

    def __init__(self, data: ModelData, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 flat_hand_mean: bool = True) -> None:  # fmt: skip
        self.data = data
        self.kind = data.kind
        self.gender = data.gender
        self.device = torch.device(device)
        self.dtype = dtype
        self.flat_hand_mean = flat_hand_mean
        t = functools.partial(torch.as_tensor, device=self.device, dtype=dtype)
        V, J = data.num_vertices, data.num_joints
        self.parents = tuple(int(p) for p in data.parents)
        self.levels = [(a.to(self.device), b.to(self.device)) for a, b in tree_levels(self.parents)]
        self.num_joints, self.num_vertices = J, V
        self.num_betas = data.num_betas
        self.num_expressions = 0 if data.exprdirs is None else int(data.exprdirs.shape[2])
        self.num_dmpls = 0 if data.dmpl_eigvec is None else int(data.dmpl_eigvec.shape[2])
        self.faces = torch.as_tensor(data.faces, device=self.device, dtype=torch.long)
        self.v_template = t(data.v_template)
        # blend-shape bases as (K, V*3) matrices, so a blend is one GEMM
        self.shape_basis = t(data.shapedirs.reshape(V * 3, -1).T.copy())
        self.expr_basis = None if data.exprdirs is None else t(data.exprdirs.reshape(V * 3, -1).T.copy())
        self.dmpl_basis = (
            None if data.dmpl_eigvec is None else t(data.dmpl_eigvec.reshape(V * 3, -1).T.copy())
        )
        self.pose_basis = t(data.posedirs.reshape(V * 3, -1).T.copy())  # (9 (J-1), V*3)
        self.J_regressor = t(data.J_regressor)
        self.weights = t(data.weights)
        # sparse skinning when each vertex follows a few joints (every SMPL-family model); dense otherwise
        nonzero = int((data.weights != 0).sum())
        self.skin_groups = skin_groups(self.weights) if nonzero <= data.weights.size // 4 else None
        # the joints-only path: the joint template and its bases, J_regressor applied once here
        reg = data.J_regressor
        self.joint_template = t(reg @ data.v_template)  # (J, 3)

        def joint_basis(dirs: np.ndarray | None) -> torch.Tensor | None:
            # (J, V) @ (V, 3 K) as one matrix product (an einsum here took 0.15 s per SMPL-X basis)
            if dirs is None:
                return None
            K = dirs.shape[2]
            return t((reg @ dirs.reshape(V, 3 * K)).reshape(J, 3, K).transpose(2, 0, 1).reshape(K, J * 3))

        self.joint_shape_basis = joint_basis(data.shapedirs)
        self.joint_expr_basis = joint_basis(data.exprdirs)
        self.joint_dmpl_basis = joint_basis(data.dmpl_eigvec)
        self.hands_mean = None if data.hands_mean is None else t(data.hands_mean.reshape(30, 3))

    def _combined_basis(self, key: tuple[int, ...], vertex_bases: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Shape and pose bases stacked for one ``addmm``; built once per combination of coefficient counts."""
        cache: dict[tuple[int, ...], torch.Tensor] = self.__dict__.setdefault("_basis_cache", {})
        if key not in cache:
            cache[key] = torch.cat([*vertex_bases, self.pose_basis], dim=0)
        return cache[key]

    # ------------------------------------------------------------ construction

    @classmethod
    def load(
        cls,
        source: str | os.PathLike[str] | ModelType,
        gender: Gender | str | None = None,
        *,
        model_dir: str | os.PathLike[str] | None = None,
        dmpl: bool | str | os.PathLike[str] = True,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        flat_hand_mean: bool = True,
    ) -> BodyModel:
        """Load a model file, or look one up by kind and gender (see :func:`amasskit.body.find_model_file`).

        Args:
            source: a file, or ``"smpl"``/``"smplh"``/``"smplx"``.
            gender: the model's gender (needed with a kind).
            model_dir: the models folder (else ``AMASSKIT_BODY_MODELS``).
            dmpl: SMPL+H: load the DMPL eigenvectors (True: from the folder when present; a path; False).
            device, dtype: where and in what precision to compute.
            flat_hand_mean: AMASS poses use a flat hand mean (default); False adds the file's hand mean to hand poses.
        """
        data = load_model_data(source, gender, model_dir=model_dir, dmpl=dmpl)
        return cls(data, device=device, dtype=dtype, flat_hand_mean=flat_hand_mean)

    @classmethod
    def from_data(cls, data: ModelData, **kwargs: Any) -> BodyModel:
        return cls(data, **kwargs)

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> BodyModel:
        """The same model on another device or in another dtype."""
        return BodyModel(self.data, device=device or self.device, dtype=dtype or self.dtype,
                         flat_hand_mean=self.flat_hand_mean)  # fmt: skip

    def __repr__(self) -> str:
        return (f"BodyModel({self.kind.value}, {self.gender.value}, V={self.num_vertices}, J={self.num_joints}, "
                f"betas={self.num_betas}, {self.dtype}, {self.device})")  # fmt: skip

    # ------------------------------------------------------------ staging

    def with_shape(
        self,
        betas: Any = None,
        *,
        expression: Any = None,
        dmpls: Any = None,
    ) -> ShapedBody:
        """Apply a body shape.

        Args:
            betas: ``(..., S')`` with ``S' <= num_betas`` (the first ``S'`` shape components); default zeros.
            expression: SMPL-X only, ``(..., E')``.
            dmpls: SMPL+H with DMPLs loaded, ``(..., 8)`` soft-tissue coefficients (usually one per frame).

        Raises:
            ValueError: more coefficients than the model has, or a part the model lacks.
        """
        coeffs = []
        joint_bases = []
        vertex_bases = []
        for name, value, basis, joint_basis in (
            ("betas", betas, self.shape_basis, self.joint_shape_basis),
            ("expression", expression, self.expr_basis, self.joint_expr_basis),
            ("dmpls", dmpls, self.dmpl_basis, self.joint_dmpl_basis),
        ):
            if value is None:
                continue
            if basis is None or joint_basis is None:
                raise InvalidArgumentError(f"this {self.kind.value} model has no {name} blend shapes")
            x = _tensor(value, self.v_template)
            if x.shape[-1] > basis.shape[0]:
                raise InvalidArgumentError(
                    f"{name} has {x.shape[-1]} coefficients; the model has {basis.shape[0]}"
                )
            coeffs.append(x)
            joint_bases.append(joint_basis[: x.shape[-1]])
            vertex_bases.append(basis[: x.shape[-1]])
        return ShapedBody(self, tuple(coeffs), tuple(joint_bases), tuple(vertex_bases))

    # ------------------------------------------------------------ sequences

    def sequence_joints(self, seq: Sequence, *, chunk: int = 65536) -> torch.Tensor:
        """Joint locations ``(T, J, 3)`` of every frame of ``seq`` (joints-only path; shape applied once).

        DMPLs, where the sequence and the model have them, move the joints a little too (they are shape components
        in AMASS's model) and are applied per frame.
        """
        return torch.cat([posed.joints for posed in self._sequence_chunks(seq, chunk)], dim=0)

    def sequence_vertices(self, seq: Sequence, *, chunk: int = 1024) -> Iterator[torch.Tensor]:
        """Vertices of ``seq`` in chunks of at most ``chunk`` frames: ``(t, V, 3)`` each, in order (bounded memory)."""
        for posed in self._sequence_chunks(seq, chunk):
            yield posed.vertices

    def sequence_betas(self, seq: Sequence) -> np.ndarray:
        """``seq.betas``, checked to be a shape this model can take (never silently cut).

        Raises:
            SequenceError: the sequence has more shape coefficients than the model file holds.
        """
        if seq.betas.shape[-1] > self.num_betas:
            where = f" ({seq.provenance.source})" if seq.provenance.source else ""
            raise SequenceError(
                f"the sequence{where} has {seq.betas.shape[-1]} shape coefficients (betas); this {self.kind.value} "
                f"model file holds {self.num_betas}: use a model file with at least as many (AMASS's SMPL+H files "
                "have 16)"
            )
        return seq.betas

    @classmethod
    def for_sequence(
        cls, seq: Sequence, *, model_dir: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> BodyModel:
        """The model a sequence's parameters belong to (its release's model, its gender), from ``model_dir``."""
        return cls.load(seq.model.value, seq.gender, model_dir=model_dir, **kwargs)

    def _sequence_chunks(self, seq: Sequence, chunk: int) -> Iterator[PosedBody]:
        if seq.model is not self.kind:
            raise SequenceError(f"a {seq.model.value} sequence cannot drive a {self.kind.value} model")
        betas = self.sequence_betas(seq)
        use_dmpls = seq.dmpls is not None and self.dmpl_basis is not None
        static = None if use_dmpls else self.with_shape(betas)
        for start in range(0, seq.num_frames, chunk):
            part = seq[start : start + chunk]
            shaped = static or self.with_shape(betas, dmpls=part.dmpls)
            yield shaped.with_pose(
                root_orient=part.root_orient,
                pose_body=part.pose_body,
                pose_hand=part.pose_hand,
                pose_jaw=part.pose_jaw,
                pose_eye=part.pose_eye,
                trans=part.trans,
            )


@dataclass(frozen=True, eq=False)
class ShapedBody:
    """A model with a shape applied (see :meth:`BodyModel.with_shape`)."""

    model: BodyModel
    coefficients: tuple[torch.Tensor, ...]
    joint_bases: tuple[torch.Tensor, ...]
    vertex_bases: tuple[torch.Tensor, ...]

    @property
    def batch_shape(self) -> torch.Size:
        return (
            broadcast_shapes(*(c.shape[:-1] for c in self.coefficients))
            if self.coefficients
            else torch.Size()
        )

    def _blended(self, template: torch.Tensor, bases: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``template (N, 3)`` plus this shape's coefficients times ``bases`` (each ``(K, N * 3)``): ``(..., N, 3)``."""
        out = template
        for c, basis in zip(self.coefficients, bases, strict=True):
            out = out + blend(c, basis).reshape(*c.shape[:-1], -1, 3)
        return out

    @functools.cached_property
    def joints_rest(self) -> torch.Tensor:
        """``(..., J, 3)`` rest-pose joints for this shape (no vertex formed)."""
        return self._blended(self.model.joint_template, self.joint_bases)

    @functools.cached_property
    def vertices_rest(self) -> torch.Tensor:
        """``(..., V, 3)`` shaped rest-pose vertices (T-pose)."""
        return self._blended(self.model.v_template, self.vertex_bases)

    def with_pose(
        self,
        *,
        root_orient: PoseInput = None,
        pose_body: PoseInput = None,
        pose_hand: PoseInput = None,
        pose_jaw: PoseInput = None,
        pose_eye: PoseInput = None,
        trans: PoseInput = None,
        rotation: Rotation = "rotvec",
    ) -> PosedBody:
        """Pose the shaped body. Parts left out stay at rest (identity); leading dimensions broadcast.

        Every part is given by name, in the one representation ``rotation`` names (``R`` below is its trailing
        shape); flat parts as in the AMASS files (``(..., 63)`` for the body in ``rotvec``) are accepted too.

        Args:
            root_orient: ``(..., R)`` pelvis orientation.
            pose_body: ``(..., 21, R)`` body joints (SMPL: ``(..., 23, R)``, its hand joints included).
            pose_hand: SMPL+H / SMPL-X ``(..., 30, R)``: the left hand's 15 joints, then the right hand's.
            pose_jaw: SMPL-X ``(..., R)``. pose_eye: SMPL-X ``(..., 2, R)``.
            trans: ``(..., 3)`` translation added to every output point.
            rotation: ``rotvec`` (``R`` = 3), ``rotmat`` (3x3), ``quat`` (4, XYZW) or ``6d`` (6).
        """
        m = self.model
        parts: list[tuple[str, Any, int]] = [("root_orient", root_orient, 1)]
        parts.append(("pose_body", pose_body, 23 if m.kind is ModelType.SMPL else 21))
        if m.kind is ModelType.SMPLX:
            parts += [("pose_jaw", pose_jaw, 1), ("pose_eye", pose_eye, 2)]
        elif pose_jaw is not None or pose_eye is not None:
            raise InvalidArgumentError(f"a {m.kind.value} model has no jaw or eye joints")
        if m.kind is not ModelType.SMPL:
            parts.append(("pose_hand", pose_hand, 30))
        elif pose_hand is not None:
            raise InvalidArgumentError(
                "SMPL has no finger joints; its two hand joints are the last of pose_body (23 joints)"
            )
        width = ROTATION_SHAPES.get(rotation, (0, 0))  # (3,) for rotvec; a matrix is never flat
        mats: list[torch.Tensor | None] = []
        batch: list[torch.Size] = [self.batch_shape]
        for name, value, count in parts:
            if value is None:
                mats.append(None)
                continue
            x = _tensor(value, m.v_template)
            if rotation == "rotmat":
                x = x.unsqueeze(-3) if count == 1 else x
            elif count == 1:
                x = x.unsqueeze(-2)
            elif len(width) == 1 and x.shape[-1] == count * width[0]:  # flat, as in the AMASS files
                x = x.reshape(*x.shape[:-1], count, width[0])
            if name == "pose_hand" and m.hands_mean is not None and not m.flat_hand_mean:
                if rotation != "rotvec":
                    raise InvalidArgumentError(
                        "the hand mean is an axis-angle offset: give pose_hand as rotvec"
                    )
                x = x + m.hands_mean
            R = _rotmat(x, rotation, name, count)
            mats.append(R)
            batch.append(R.shape[:-3])
        shape = broadcast_shapes(*batch)
        eye = torch.eye(3, device=m.device, dtype=m.dtype)
        full = [
            eye.expand(*shape, count, 3, 3) if R is None else R.expand(*shape, count, 3, 3)
            for (_name, _value, count), R in zip(parts, mats, strict=True)
        ]
        rel = torch.cat(full, dim=-3)
        t = None if trans is None else _tensor(trans, m.v_template)
        return PosedBody(self, rel, t)

    def with_rotmats(self, rel_rotmat: torch.Tensor, trans: Any = None) -> PosedBody:
        """Pose with all joints' relative rotations at once, ``(..., J, 3, 3)`` in the model's joint order."""
        m = self.model
        rel = _tensor(rel_rotmat, m.v_template)
        if rel.shape[-3:] != (m.num_joints, 3, 3):
            raise InvalidArgumentError(
                f"rel_rotmat must be (..., {m.num_joints}, 3, 3), got {tuple(rel.shape)}"
            )
        return PosedBody(self, rel, None if trans is None else _tensor(trans, m.v_template))


def _rotmat(x: torch.Tensor, rotation: str, name: str, count: int) -> torch.Tensor:
    try:
        R = to_rotmat(x, rotation)
    except ValueError as exc:
        raise InvalidArgumentError(f"{name}: {exc}") from None
    if R.shape[-3] != count:
        raise InvalidArgumentError(
            f"{name} must have {count} joints, got {R.shape[-3]} (shape {tuple(x.shape)})"
        )
    return R


@dataclass(frozen=True, eq=False)
class PosedBody:
    """A shaped, posed body (see :meth:`ShapedBody.with_pose`). Properties are computed once, when first read."""

    shaped: ShapedBody
    rel_rotmat: torch.Tensor
    trans: torch.Tensor | None

    @functools.cached_property
    def _fk(self) -> tuple[torch.Tensor, torch.Tensor]:
        return forward_kinematics(self.rel_rotmat, self.shaped.joints_rest, self.shaped.model.levels)

    @property
    def glob_rotmat(self) -> torch.Tensor:
        """``(..., J, 3, 3)`` each joint's rotation in the output frame."""
        return self._fk[0]

    @functools.cached_property
    def joints(self) -> torch.Tensor:
        """``(..., J, 3)`` posed joint locations (forward kinematics only)."""
        joints = self._fk[1]
        return joints if self.trans is None else joints + self.trans.unsqueeze(-2)

    @functools.cached_property
    def vertices(self) -> torch.Tensor:
        """``(..., V, 3)`` posed vertices (linear blend skinning with shape and pose blend shapes).

        The template, the shape blend shapes and the pose blend shapes are added by one ``addmm`` per chunk (a
        single GEMM with the template as bias), and the translation rides in the skinning transforms, so no
        full-size element-wise pass is left besides skinning itself.
        """
        m = self.shaped.model
        glob, joints = self._fk
        batch = glob.shape[:-3]
        J, V = m.num_joints, m.num_vertices
        rest_joints = self.shaped.joints_rest.expand(*batch, J, 3)
        transforms = skinning_transforms(glob, joints, rest_joints)
        if self.trans is not None:
            moved = transforms[..., 3] + self.trans.expand(*batch, 3).unsqueeze(-2)
            transforms = torch.cat([transforms[..., :3], moved.unsqueeze(-1)], dim=-1)
        transforms = transforms.reshape(-1, J, 3, 4)
        eye = torch.eye(3, device=m.device, dtype=m.dtype)
        feature = (self.rel_rotmat.expand(*batch, J, 3, 3)[..., 1:, :, :] - eye).reshape(-1, 9 * (J - 1))
        shaped = self.shaped
        if shaped.batch_shape == torch.Size():  # one shape for every pose: it joins the bias
            bias = shaped.vertices_rest.reshape(V * 3)
            coefficients, basis = feature, m.pose_basis
        else:
            bias = m.v_template.reshape(V * 3)
            n = feature.shape[0]
            parts = [c.expand(*batch, c.shape[-1]).reshape(n, -1) for c in shaped.coefficients]
            coefficients = torch.cat([*parts, feature], dim=1)
            basis = m._combined_basis(tuple(c.shape[-1] for c in shaped.coefficients), shaped.vertex_bases)
        out = []
        for start in range(0, transforms.shape[0], _VERTEX_CHUNK):
            sl = slice(start, start + _VERTEX_CHUNK)
            if m.skin_groups is not None:  # vertex-major: the GEMM writes (V * 3, n) directly
                rest_vm = torch.addmm(bias[:, None], basis.T, coefficients[sl].T).reshape(V, 3, -1)
                moved = skin_sparse(rest_vm, m.skin_groups, transforms[sl].permute(1, 2, 3, 0).contiguous())
                out.append(moved.permute(2, 0, 1))
            else:
                posed_rest = torch.addmm(bias, coefficients[sl], basis).reshape(-1, V, 3)
                out.append(skin(posed_rest, m.weights, transforms[sl]))
        vertices = out[0].contiguous() if len(out) == 1 else torch.cat(out, dim=0)
        return vertices.reshape(*batch, V, 3)

    @property
    def faces(self) -> torch.Tensor:
        return self.shaped.model.faces


class BodyModelModule(torch.nn.Module):
    """A :class:`torch.nn.Module` view of a body model for training code: the arrays are buffers (they move with
    ``.to()``), and :meth:`forward` is differentiable in every input.

    ``forward(betas, root_orient, pose_body, pose_hand=None, pose_jaw=None, pose_eye=None, trans=None,
    expression=None, dmpls=None, rotation="rotvec", vertices=True)`` returns ``{"joints": (..., J, 3),
    "vertices": (..., V, 3)}`` (vertices only when asked for).
    """

    _BUFFERS = ("v_template", "shape_basis", "expr_basis", "dmpl_basis", "pose_basis", "J_regressor", "weights",
                "joint_template", "joint_shape_basis", "joint_expr_basis", "joint_dmpl_basis", "hands_mean", "faces")  # fmt: skip

    def __init__(self, model: BodyModel) -> None:
        super().__init__()
        self._model = model
        for name in self._BUFFERS:
            value = getattr(model, name)
            if value is not None:
                self.register_buffer(name, value.clone(), persistent=False)

    def _current(self) -> BodyModel:
        """The wrapped model, its tensors replaced by this module's buffers (which ``.to()`` may have moved)."""
        model = object.__new__(BodyModel)
        model.__dict__.update(self._model.__dict__)
        model.__dict__.pop("_basis_cache", None)  # built from the original device and dtype
        for name, buffer in self.named_buffers():
            setattr(model, name, buffer)
        template: torch.Tensor = self.get_buffer("v_template")
        model.device = template.device
        model.dtype = template.dtype
        model.levels = [(a.to(model.device), b.to(model.device)) for a, b in self._model.levels]
        if self._model.skin_groups is not None:
            model.skin_groups = [
                (j, idx.to(model.device), w.to(model.device, model.dtype))
                for j, idx, w in self._model.skin_groups
            ]
        return model

    def forward(
        self,
        betas: torch.Tensor | None = None,
        root_orient: torch.Tensor | None = None,
        pose_body: torch.Tensor | None = None,
        pose_hand: torch.Tensor | None = None,
        pose_jaw: torch.Tensor | None = None,
        pose_eye: torch.Tensor | None = None,
        trans: torch.Tensor | None = None,
        expression: torch.Tensor | None = None,
        dmpls: torch.Tensor | None = None,
        rotation: Rotation = "rotvec",
        vertices: bool = True,
    ) -> dict[str, torch.Tensor]:
        posed = (
            self._current()
            .with_shape(betas, expression=expression, dmpls=dmpls)
            .with_pose(
                root_orient=root_orient,
                pose_body=pose_body,
                pose_hand=pose_hand,
                pose_jaw=pose_jaw,
                pose_eye=pose_eye,
                trans=trans,
                rotation=rotation,
            )
        )
        out = {"joints": posed.joints}
        if vertices:
            out["vertices"] = posed.vertices
        return out
