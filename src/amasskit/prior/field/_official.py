"""Pose-NDF's and NRDF's released checkpoints, read into :class:`~amasskit.prior.DistanceField` without running code.

The originals save ``torch.save({'epoch', 'model_state_dict', 'optimizer_state_dict'})`` (legacy serialisation,
``checkpoint_epoch_best.tar``) with the weights

    enc.net.{j}.net.0.{weight,bias}   bone j's first layer, (10, 4) or (10, 4 + 6) and (10,)
    enc.net.{j}.net.2.{weight,bias}   its second layer, (6, 10) and (6,)
    dfnet.lin{l}.{weight,bias}        the distance MLP
    dec.*                             NRDF only: a decoder its forward pass never uses (skipped)

and a ``config.yaml`` beside them (``model.DFNet.dims``: a comma-separated string or a list; ``act``; ``beta``;
NRDF adds ``model.StrEnc.smpl_mapping``, its parent map). The networks take normalised WXYZ quaternions with
``w >= 0``; the loaded model takes amasskit's XYZW of any sign and converts at its boundary.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ..._util.integrity import damaged_member
from ..._util.paths import user_path
from ...errors import CheckpointError, InvalidArgumentError
from ._network import DistanceField, DistanceFieldConfig

logger = logging.getLogger(__name__)

__all__ = ["load_official", "read_official_config"]

_ENC = re.compile(r"enc\.net\.(\d+)\.net\.([02])\.(weight|bias)")
_MLP = re.compile(r"dfnet\.lin(\d+)\.(weight|bias)")


def _find_config(checkpoint: Path) -> Path | None:
    for folder in (checkpoint.parent, checkpoint.parent.parent):
        for name in ("config.yaml", "config.yml"):
            if (folder / name).is_file():
                return folder / name
    return None


def read_official_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The network settings of an original ``config.yaml``: ``dims`` (list), ``act``, ``beta``, ``parents`` (a
    list, or None for Pose-NDF's built-in map).

    Raises:
        CheckpointError: unreadable YAML or no ``model.DFNet`` section.
    """
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml is in the config extra
        raise CheckpointError(
            path, "reading the original config needs PyYAML (pip install amasskit[config])"
        ) from exc
    try:
        data = yaml.safe_load(Path(path).read_text())
        net = data["model"]["DFNet"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, RecursionError) as exc:
        raise CheckpointError(path, f"not a Pose-NDF/NRDF config (model.DFNet): {exc}") from None
    if not isinstance(net, dict):
        raise CheckpointError(path, f"model.DFNet is a {type(net).__name__}, not a section of settings")
    dims = net.get("dims", "256, 512, 1024, 512, 256, 64")
    try:
        dims = [int(d) for d in (dims.split(",") if isinstance(dims, str) else dims)]
    except (TypeError, ValueError):
        raise CheckpointError(path, f"model.DFNet.dims is not a list of widths: {dims!r}") from None
    encoder = data["model"].get("StrEnc") or {}
    if not isinstance(encoder, dict):
        raise CheckpointError(path, f"model.StrEnc is a {type(encoder).__name__}, not a section of settings")
    mapping = encoder.get("smpl_mapping")
    parents = None
    if mapping is not None:
        try:
            parents = [int(p) for p in (mapping.split(",") if isinstance(mapping, str) else mapping)]
        except (TypeError, ValueError):
            raise CheckpointError(
                path, f"model.StrEnc.smpl_mapping is not a list of parents: {mapping!r}"
            ) from None
    act = str(net.get("act", "lrelu"))
    if encoder.get("act", act) != act:
        raise CheckpointError(
            path, f"the encoder's activation {encoder.get('act')!r} differs from the MLP's {act!r}"
        )
    try:
        beta = float(net.get("beta", 100.0))
    except (TypeError, ValueError):
        raise CheckpointError(path, f"model.DFNet.beta is not a number: {net.get('beta')!r}") from None
    return {"dims": dims, "act": act, "beta": beta, "parents": parents}


def _load_tensors(path: Path, map_location: str | torch.device) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(path, "no such checkpoint file")
    damaged = damaged_member(path)
    if damaged is not None:
        raise CheckpointError(path, f"damaged: {damaged} fails its checksum (a changed or truncated file)")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            path,
            "holds more than tensors and plain data (loading it would run code; amasskit "
            f"only loads with weights_only): {str(exc).splitlines()[0]}",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(path, f"not a readable torch checkpoint: {exc}") from None
    state = data.get("model_state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(path, "no model_state_dict of tensors in it")
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def load_official(
    checkpoint: str | os.PathLike[str],
    config: str | os.PathLike[str] | None = None,
    *,
    metric: str | None = None,
    map_location: str | torch.device = "cpu",
) -> DistanceField:
    """A released Pose-NDF or NRDF network as a :class:`DistanceField` (evaluation mode, on ``map_location``).

    Args:
        checkpoint: the ``.tar`` (or ``.pt``) file; loaded with ``weights_only`` (no code runs).
        config: its ``config.yaml`` (default: beside the checkpoint or one folder up).
        metric: what the output measures: ``posendf`` (Pose-NDF's ``mean_j 1 - |<q_j, x_j>|``, the default without
            an explicit parent map in the config) or ``geodesic`` (NRDF's ``mean_j acos |<q_j, x_j>|``, the default
            with one); the originals average over the joints, so the model's ``reduction`` is ``mean``.

    Raises:
        CheckpointError: a missing, unreadable or code-carrying checkpoint, a missing or unreadable config, weights
            that are missing, unexpected or of the wrong shape.
    """
    path = user_path(checkpoint)
    state = _load_tensors(path, map_location)
    config_path = user_path(config) if config is not None else _find_config(path)
    if config_path is None:
        raise CheckpointError(path, "no config.yaml beside it or one folder up; pass its config")
    settings = read_official_config(config_path)
    enc, mlp = _grouped_weights(path, state)
    J = len(enc)
    parents = settings["parents"] if settings["parents"] is not None else "official"
    if metric is None:
        metric = "posendf" if settings["parents"] is None else "geodesic"
    try:
        cfg = DistanceFieldConfig(
            joints=J,
            parents=parents,
            activation=settings["act"],
            beta=settings["beta"],
            dims=tuple(settings["dims"]),
            order="wxyz",
            canonical=True,
            metric=metric,
            reduction="mean",
        )
    except InvalidArgumentError as exc:
        raise CheckpointError(config_path, str(exc)) from None
    stored = sum(t.numel() for t in state.values())
    if cfg.mlp_weights() > stored:  # checked before the network is allocated
        raise CheckpointError(
            config_path,
            f"its widths {cfg.dims} need {cfg.mlp_weights():,} weights at least; the "
            f"checkpoint {path} holds {stored:,}: they do not fit",
        )
    model = DistanceField(cfg)
    with torch.no_grad():
        _copy_bones(path, model, enc)
        _copy_layers(path, model, mlp)
    logger.info(
        "loaded %s: %d bones, %s parents, %s, %s distance",
        path,
        J,
        "explicit" if settings["parents"] else "official",
        settings["act"],
        metric,
    )
    return model.to(map_location).eval()


def _grouped_weights(
    path: Path, state: dict[str, torch.Tensor]
) -> tuple[dict[int, dict[str, torch.Tensor]], dict[int, dict[str, torch.Tensor]]]:
    """The checkpoint's weights by bone MLP (``enc.net.J.net.{0,2}.{weight,bias}``) and distance layer
    (``dfnet.linI.{weight,bias}``); the decoder's (``dec.``) are left out.

    Raises:
        CheckpointError: a weight of neither kind, or bones or layers not numbered from 0.
    """
    enc: dict[int, dict[str, torch.Tensor]] = {}
    mlp: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith("dec."):
            continue
        if m := _ENC.fullmatch(key):
            enc.setdefault(int(m[1]), {})[f"{m[2]}.{m[3]}"] = value
        elif m := _MLP.fullmatch(key):
            mlp.setdefault(int(m[1]), {})[m[2]] = value
        else:
            raise CheckpointError(path, f"unexpected weight {key!r} (not a Pose-NDF/NRDF network)")
    J = len(enc)
    if J == 0 or sorted(enc) != list(range(J)) or sorted(mlp) != list(range(len(mlp))):
        raise CheckpointError(
            path, f"bone MLPs {sorted(enc)} and layers {sorted(mlp)} are not numbered from 0"
        )
    return enc, mlp


def _copy_bones(path: Path, model: DistanceField, enc: dict[int, dict[str, torch.Tensor]]) -> None:
    """Each bone MLP's two layers into the network's batched bones (the first layer's quaternion and parent-feature
    columns apart).

    Raises:
        CheckpointError: a weight missing or of another shape than the config and parent map need.
    """
    C, H = model.config.feature, model.config.hidden
    for j in range(model.config.joints):
        bone = enc[j]
        need = {
            "0.weight": (H, 4 + (C if model.parents[j] >= 0 else 0)),
            "0.bias": (H,),
            "2.weight": (C, H),
            "2.bias": (C,),
        }
        for name, shape in need.items():
            if name not in bone:
                raise CheckpointError(path, f"enc.net.{j}.net.{name} is missing")
            if tuple(bone[name].shape) != shape:
                raise CheckpointError(
                    path,
                    f"enc.net.{j}.net.{name} is {tuple(bone[name].shape)}, the config and parent map need {shape}",
                )
        w = bone["0.weight"]
        model.bone(j)["quat"].copy_(w[:, :4])
        model.bone(j)["parent"].zero_()
        if model.parents[j] >= 0:
            model.bone(j)["parent"].copy_(w[:, 4:])
        model.bone(j)["bias"].copy_(bone["0.bias"])
        model.bone(j)["out"].copy_(bone["2.weight"])
        model.bone(j)["out_bias"].copy_(bone["2.bias"])


def _copy_layers(path: Path, model: DistanceField, mlp: dict[int, dict[str, torch.Tensor]]) -> None:
    """The distance MLP's layers.

    Raises:
        CheckpointError: another number of layers than the config's dims give, or a weight of another shape.
    """
    if len(mlp) != len(model.mlp):
        raise CheckpointError(path, f"{len(mlp)} distance layers, the config's dims give {len(model.mlp)}")
    for i, lin in enumerate(model.mlp):
        assert isinstance(lin, torch.nn.Linear)
        for name, target in (("weight", lin.weight), ("bias", lin.bias)):
            got = mlp[i].get(name)
            if got is None or got.shape != target.shape:
                raise CheckpointError(
                    path,
                    f"dfnet.lin{i}.{name} is {None if got is None else tuple(got.shape)}, need {tuple(target.shape)}",
                )
            target.copy_(got)
