"""The distance-field network of Pose-NDF and NRDF, with its per-bone encoders evaluated together.

The network maps a pose, ``J`` per-joint unit quaternions, to its distance to the manifold of plausible poses:

* a structure encoder: one small MLP per bone, ``Linear(in, 10) -> act -> Linear(10, 6) -> act``, run along the
  kinematic tree (``in`` is 4 for the bones whose parent is the root, 4 + 6 (the parent's feature) for the others);
* a distance MLP over the ``6 J`` features, ``6J-256-512-1024-512-256-64-1`` by default, with an activation between
  layers and on the output: ``lrelu`` (LeakyReLU(0.01), ReLU on the output; Pose-NDF), ``relu``, or ``softplus``
  (Softplus with ``beta``, 100 by default, on both; NRDF).

The originals call the 21 bone MLPs one by one; here the bones of one depth of the tree go through one batched
matrix product (7 calls for the body, 10 with the hands), and the quaternion half of every bone's first layer is one
product for all bones up front.

Parent maps (over the non-root joints, ``-1``: a child of the root): ``fixed`` is the kinematic tree (the default for
new training); ``official`` is the map Pose-NDF's released code uses, the SMPL parents not shifted by one
(``[-1,-1,-1,1,2,3,...]``: the left knee reads the right hip's feature, and so on), which its checkpoints need.

Conventions: the input is XYZW quaternions of either sign and any norm (``(..., J, 4)``); by default the network
normalises them and flips each to ``w >= 0`` first (``canonical=True``), so its value is the same for ``q`` and ``-q``.
``order="wxyz"`` feeds the network WXYZ components (Pose-NDF's and NRDF's checkpoints); the permutation happens here,
at the boundary. The output is in the units of the metric the network was trained on (:attr:`DistanceFieldConfig.metric`
and ``reduction``: summed over the joints, as amasskit's training data, or their mean, as the originals).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import torch
from torch import nn
from torch.nn import functional

from ..._util.hardware import check_memory
from ...errors import InvalidArgumentError
from ...rotations import quat_canonical, quat_canonical_sign
from ...topology import BODY_PARENTS, SMPLH_PARENTS
from ..poses import METRICS

__all__ = [
    "ACTIVATIONS",
    "PARENT_MAPS",
    "DistanceField",
    "DistanceFieldConfig",
    "canonical_quat",
    "field_value",
    "parent_map",
]

ACTIVATIONS: Final[tuple[str, ...]] = ("lrelu", "relu", "softplus")
REDUCTIONS: Final[tuple[str, ...]] = ("sum", "mean")
ORDERS: Final[tuple[str, ...]] = ("xyzw", "wxyz")


def _fixed(parents: Sequence[int]) -> tuple[int, ...]:
    """The non-root joints' parents, re-indexed among the non-root joints (the root becomes -1)."""
    return tuple(p - 1 for p in parents[1:])


PARENT_MAPS: Final[dict[str, dict[int, tuple[int, ...]]]] = {
    "fixed": {21: _fixed(BODY_PARENTS), 51: _fixed(SMPLH_PARENTS)},
    # Pose-NDF's released map: the SMPL parents of joints 1..21, not shifted (a child of the pelvis is -1)
    "official": {21: tuple(-1 if p == 0 else p for p in BODY_PARENTS[1:])},
}


def parent_map(parents: str | Sequence[int], joints: int) -> tuple[int, ...]:
    """The parent of each of ``joints`` bones (``-1``: the root's child), from a name or an explicit list.

    Raises:
        InvalidArgumentError: an unknown name, a map of another length, or a parent that is not an earlier bone.
    """
    if isinstance(parents, str):
        if parents not in PARENT_MAPS:
            raise InvalidArgumentError(
                f"parents must be one of {', '.join(PARENT_MAPS)} or a list, got {parents!r}"
            )
        if joints not in PARENT_MAPS[parents]:
            raise InvalidArgumentError(
                f"the {parents!r} parent map is defined for {sorted(PARENT_MAPS[parents])} joints, not {joints}"
            )
        return PARENT_MAPS[parents][joints]
    out = tuple(int(p) for p in parents)
    if len(out) != joints or any(not -1 <= p < i for i, p in enumerate(out)):
        raise InvalidArgumentError(
            f"a parent map needs {joints} entries, each -1 or an earlier bone's index, got {list(out)}"
        )
    return out


@dataclass(frozen=True, kw_only=True)
class DistanceFieldConfig:
    """The network's shape and the units of its output.

    Attributes:
        joints: 21 (body) or 51 (body and hands); any count with an explicit parent map.
        parents: ``fixed`` (the kinematic tree), ``official`` (Pose-NDF's released map) or a list.
        activation: ``lrelu``, ``relu`` or ``softplus``; beta: Softplus's sharpness.
        dims: the distance MLP's hidden widths. hidden, feature: each bone MLP's hidden and output widths.
        order: the component order the network sees (``xyzw``; ``wxyz`` for the original checkpoints).
        canonical: normalise and flip to ``w >= 0`` before the network.
        metric: ``posendf`` or ``geodesic``, what the output measures; reduction: ``sum`` or ``mean`` over joints.
    """

    joints: int = 21
    parents: str | tuple[int, ...] = "fixed"
    activation: str = "softplus"
    beta: float = 100.0
    dims: tuple[int, ...] = (256, 512, 1024, 512, 256, 64)
    hidden: int = 10
    feature: int = 6
    order: str = "xyzw"
    canonical: bool = True
    metric: str = "geodesic"
    reduction: str = "sum"

    def __post_init__(self) -> None:
        for key, value, allowed in (
            ("activation", self.activation, ACTIVATIONS),
            ("order", self.order, ORDERS),
            ("metric", self.metric, METRICS),
            ("reduction", self.reduction, REDUCTIONS),
        ):
            if value not in allowed:
                raise InvalidArgumentError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
        if not isinstance(self.parents, str):
            object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))
        object.__setattr__(self, "dims", tuple(int(d) for d in self.dims))
        if self.joints < 1 or any(d < 1 for d in self.dims) or self.hidden < 1 or self.feature < 1:
            raise InvalidArgumentError(f"joints, widths must be >= 1, got {self.joints}, {self.dims}")
        if not self.beta > 0:
            raise InvalidArgumentError(f"beta must be > 0, got {self.beta}")
        parent_map(self.parents, self.joints)

    def mlp_weights(self) -> int:
        """The weights and biases of the distance MLP alone (from the joints' features to the distance): a lower
        bound of the network's size, computed before any is allocated."""
        widths = [self.joints * self.feature, *self.dims, 1]
        return sum(a * b + b for a, b in itertools.pairwise(widths))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["parents"] = self.parents if isinstance(self.parents, str) else list(self.parents)
        out["dims"] = list(self.dims)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistanceFieldConfig:
        data = dict(data)
        if isinstance(data.get("parents"), list):
            data["parents"] = tuple(data["parents"])
        if "dims" in data:
            data["dims"] = tuple(data["dims"])
        return cls(**data)


def canonical_quat(quat: torch.Tensor) -> torch.Tensor:
    """``quat (..., 4)`` XYZW normalised and flipped to ``w >= 0``, ties at ``w = 0`` broken by ``x, y, z`` (the name
    before 0.2: :func:`amasskit.rotations.quat_canonical` with ``normalize=True``, kept for one release; the
    originals flip on ``w < 0`` only, which differs from this only where ``w`` is exactly 0)."""
    return quat_canonical(quat, normalize=True)


def _levels(parents: tuple[int, ...]) -> list[list[int]]:
    """The bones grouped by their depth in the tree, in order."""
    depth: list[int] = []
    for p in parents:
        depth.append(0 if p < 0 else depth[p] + 1)
    return [[j for j, d in enumerate(depth) if d == level] for level in range(max(depth) + 1)]


class DistanceField(nn.Module):
    """The Pose-NDF / NRDF distance field: ``forward(quat (..., J, 4)) -> (...)`` distances (see the module doc).

    Parameters, one row per bone in evaluation order (the bones sorted by tree depth, so each depth is one slice):
    ``enc_quat (J, H, 4)``, ``enc_parent (J, H, C)`` (zero and unused for the root's children), ``enc_bias (J, H)``,
    ``enc_out (J, C, H)``, ``enc_out_bias (J, C)``; :meth:`bone` gives bone ``j``'s rows. The distance MLP
    ``mlp.{0..L}`` as ``nn.Linear`` layers. :func:`~amasskit.prior.load_official` maps the originals' keys onto them.
    """

    _order: torch.Tensor
    _parent_slot: torch.Tensor
    _unorder: torch.Tensor

    def __init__(self, config: DistanceFieldConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or DistanceFieldConfig()
        check_memory(4 * cfg.mlp_weights(), f"a distance field of widths {cfg.dims}")  # before allocating
        J, H, C = cfg.joints, cfg.hidden, cfg.feature
        parents = parent_map(cfg.parents, J)
        self.enc_quat = nn.Parameter(torch.empty(J, H, 4))
        self.enc_parent = nn.Parameter(torch.empty(J, H, C))
        self.enc_bias = nn.Parameter(torch.empty(J, H))
        self.enc_out = nn.Parameter(torch.empty(J, C, H))
        self.enc_out_bias = nn.Parameter(torch.empty(J, C))
        widths = [J * C, *cfg.dims, 1]
        self.mlp = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self._plan(parents)
        self.reset_parameters(generator=None)

    def _plan(self, parents: tuple[int, ...]) -> None:
        """Index tensors for the level-by-level evaluation (buffers, so they follow ``.to(device)``)."""
        levels = _levels(parents)
        order = [j for level in levels for j in level]  # bones in evaluation order
        slot = {j: i for i, j in enumerate(order)}  # a bone's row in the stacked features
        self._level_sizes = [len(level) for level in levels]
        self._level_has_parent = [parents[level[0]] >= 0 for level in levels]
        if any(
            any((parents[j] >= 0) != has for j in level)
            for level, has in zip(levels, self._level_has_parent, strict=True)
        ):
            raise InvalidArgumentError(
                "every bone of one depth must have a parent or none"
            )  # pragma: no cover
        self.register_buffer("_order", torch.tensor(order), persistent=False)
        self.register_buffer(
            "_parent_slot",
            torch.tensor([slot[parents[j]] if parents[j] >= 0 else 0 for j in order]),
            persistent=False,
        )
        self.register_buffer(
            "_unorder", torch.tensor([slot[j] for j in range(len(parents))]), persistent=False
        )
        self._slot = [slot[j] for j in range(len(parents))]
        self.parents = parents

    def bone(self, j: int) -> dict[str, torch.Tensor]:
        """Bone ``j``'s parameters (views): ``quat (H, 4)`` and ``parent (H, C)`` (its first layer's weight split
        into the quaternion's and the parent feature's columns), ``bias (H,)``, ``out (C, H)``, ``out_bias (C,)``."""
        s = self._slot[j]
        return {
            "quat": self.enc_quat[s],
            "parent": self.enc_parent[s],
            "bias": self.enc_bias[s],
            "out": self.enc_out[s],
            "out_bias": self.enc_out_bias[s],
        }

    def reset_parameters(self, *, generator: torch.Generator | None = None) -> None:
        """PyTorch's default ``nn.Linear`` initialisation for every layer, bone by bone, from ``generator``."""
        with torch.no_grad():
            for j in range(self.config.joints):
                bone = self.bone(j)
                fan_in = 4 + (self.config.feature if self.parents[j] >= 0 else 0)
                bound = 1 / math.sqrt(fan_in)
                for name in ("quat", "parent", "bias"):
                    bone[name].uniform_(-bound, bound, generator=generator)
                if self.parents[j] < 0:
                    bone["parent"].zero_()
                bound = 1 / math.sqrt(self.config.hidden)
                bone["out"].uniform_(-bound, bound, generator=generator)
                bone["out_bias"].uniform_(-bound, bound, generator=generator)
            for lin in self.mlp:
                assert isinstance(lin, nn.Linear)
                bound = 1 / math.sqrt(lin.in_features)
                lin.weight.uniform_(-bound, bound, generator=generator)
                lin.bias.uniform_(-bound, bound, generator=generator)

    def _act(self, x: torch.Tensor, *, last: bool = False) -> torch.Tensor:
        act = self.config.activation
        if act == "softplus":
            return functional.softplus(x, beta=self.config.beta)
        if act == "relu" or last:
            return functional.relu(x)
        return functional.leaky_relu(x, 0.01)

    def features(
        self, quat: torch.Tensor, *, keep: list[tuple[slice, bool, torch.Tensor, torch.Tensor]] | None = None
    ) -> torch.Tensor:
        """``quat (B, J, 4)`` as the network sees it -> the encoder's ``(B, 6 J)`` features (bone-major, as the
        originals concatenate them). ``keep``: a list that receives each tree level's ``(rows, has parent, first
        layer's and second layer's pre-activations)``, for :meth:`value_and_grad`'s backward."""
        B, J = quat.shape[0], self.config.joints
        x = quat.transpose(0, 1)[self._order]  # (J, B, 4) in evaluation order
        # the quaternion half of every first layer at once
        first = torch.baddbmm(self.enc_bias.unsqueeze(1), x, self.enc_quat.transpose(1, 2))
        w_parent = self.enc_parent.transpose(
            1, 2
        )  # parameters are stored in evaluation order: slices, no gathers
        w_out = self.enc_out.transpose(1, 2)
        b_out = self.enc_out_bias.unsqueeze(1)
        done: torch.Tensor | None = None  # (n, B, C) features of the bones so far, in evaluation order
        start = 0
        for size, has_parent in zip(self._level_sizes, self._level_has_parent, strict=True):
            part = slice(start, start + size)
            h = first[part]
            if has_parent:
                assert done is not None
                h = torch.baddbmm(h, done[self._parent_slot[part]], w_parent[part])
            o = torch.baddbmm(b_out[part], self._act(h), w_out[part])
            if keep is not None:
                keep.append((part, has_parent, h, o))
            f = self._act(o)
            done = f if done is None else torch.cat([done, f])
            start += size
        assert done is not None
        return done[self._unorder].transpose(0, 1).reshape(B, J * self.config.feature)

    def forward(self, quat: torch.Tensor) -> torch.Tensor:
        """``quat (..., J, 4)`` XYZW -> ``(...)`` distances to the manifold (in the model's units)."""
        J = self.config.joints
        if quat.ndim < 2 or quat.shape[-2:] != (J, 4):
            raise InvalidArgumentError(f"poses must be (..., {J}, 4) quaternions, got {tuple(quat.shape)}")
        lead = quat.shape[:-2]
        x = quat.reshape(-1, J, 4)
        if self.config.canonical:
            x = quat_canonical(x, normalize=True)
        if self.config.order == "wxyz":
            x = x[..., [3, 0, 1, 2]]
        h = self.features(x)
        last = len(self.mlp) - 1
        for i, lin in enumerate(self.mlp):
            h = self._act(lin(h), last=i == last)
        return h.reshape(lead)

    def _act_grad(self, x: torch.Tensor, *, last: bool = False) -> torch.Tensor:
        """The activation's derivative at ``x``, as PyTorch's backward computes it (softplus linear above ``beta x =
        20``; (leaky) ReLU takes the negative side's slope at 0)."""
        act = self.config.activation
        if act == "softplus":  # PyTorch's softplus is linear above beta x = 20
            bx = x * self.config.beta
            return torch.where(bx > 20, 1.0, torch.sigmoid(bx))
        positive = (x > 0).to(x.dtype)
        if act == "relu" or last:
            return positive
        return positive.mul_(0.99).add_(0.01)

    def value_and_grad(self, quat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f(quat) (...), df/dquat (..., J, 4))``, written out (a forward that keeps the pre-activations, then the
        chain rule by hand, layer by layer and tree level by level) instead of through autograd: no graph is built,
        so a small batch (fitting one frame, projecting a few poses) costs a third as many operations. Equal to
        autograd's gradient of :meth:`forward` (tested to float64 rounding for every activation). Not
        differentiable itself (no second derivatives; the trainer's eikonal term uses :meth:`forward`)."""
        cfg = self.config
        J, C = cfg.joints, cfg.feature
        if quat.ndim < 2 or quat.shape[-2:] != (J, 4):
            raise InvalidArgumentError(f"poses must be (..., {J}, 4) quaternions, got {tuple(quat.shape)}")
        lead = quat.shape[:-2]
        with torch.no_grad():
            q = quat.reshape(-1, J, 4)
            B = q.shape[0]
            if cfg.canonical:
                norm = q.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # as functional.normalize
                unit = q / norm
                sign = quat_canonical_sign(unit).unsqueeze(-1).to(q.dtype)
                x = unit * sign
            else:
                x = q
            if cfg.order == "wxyz":
                x = x[..., [3, 0, 1, 2]]
            kept: list[tuple[slice, bool, torch.Tensor, torch.Tensor]] = []
            a = self.features(x, keep=kept)
            pre: list[torch.Tensor] = []
            last = len(self.mlp) - 1
            for i, lin in enumerate(self.mlp):
                assert isinstance(lin, nn.Linear)
                z = torch.addmm(lin.bias, a, lin.weight.T)
                pre.append(z)
                a = self._act(z, last=i == last)
            value = a[:, 0]
            g = self._act_grad(pre[last], last=True)
            for i in range(last, -1, -1):
                lin = self.mlp[i]
                assert isinstance(lin, nn.Linear)
                if i < last:
                    g = g * self._act_grad(pre[i])
                g = g @ lin.weight
            g_done = (
                g.reshape(B, J, C).transpose(0, 1)[self._order].contiguous()
            )  # (J, B, C), evaluation order
            g_x = torch.empty(J, B, 4, dtype=x.dtype, device=x.device)
            for part, has_parent, h, o in reversed(kept):
                g_h = torch.bmm(g_done[part] * self._act_grad(o), self.enc_out[part]) * self._act_grad(h)
                g_x[part] = torch.bmm(g_h, self.enc_quat[part])
                if has_parent:
                    g_done.index_add_(0, self._parent_slot[part], torch.bmm(g_h, self.enc_parent[part]))
            grad = g_x[self._unorder].transpose(0, 1)  # (B, J, 4) joint order
            if cfg.order == "wxyz":
                grad = grad[..., [1, 2, 3, 0]]
            if cfg.canonical:
                grad = grad * sign
                grad = (grad - (grad * unit).sum(-1, keepdim=True) * unit) / norm
        return value.reshape(lead), grad.reshape(quat.shape)


class _ValueAndGrad(torch.autograd.Function):
    """``f(quat)`` whose backward is the hand-written :meth:`DistanceField.value_and_grad` (first derivatives in
    ``quat`` only: for fitting and projection, where the field's weights are fixed)."""

    @staticmethod
    def forward(ctx: Any, quat: torch.Tensor, field: DistanceField) -> torch.Tensor:
        value, grad = field.value_and_grad(quat)
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx: Any, *outputs: torch.Tensor) -> tuple[torch.Tensor, None]:
        (grad,) = ctx.saved_tensors
        return outputs[0][..., None, None] * grad, None


def field_value(field: nn.Module, quat: torch.Tensor) -> torch.Tensor:
    """``field(quat)``, differentiable in ``quat``; through :meth:`DistanceField.value_and_grad` (no autograd graph
    of the network) where ``field`` is a :class:`DistanceField` whose weights need no gradient, else the module's own
    forward."""
    frozen = isinstance(field, DistanceField) and not any(p.requires_grad for p in field.parameters())
    if frozen and quat.requires_grad:
        out: torch.Tensor = _ValueAndGrad.apply(quat, field)
        return out
    return field(quat)
