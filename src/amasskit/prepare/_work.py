"""Per-sequence work: a pure function of one file, the config and the seed, run in the pool's workers.

Workers need only numpy (rotations through :mod:`amasskit.rotations`' numpy path); torch is imported only where a
body model is configured.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._util.atomic import atomic_open
from ..conventions import POSE_PARTS
from ..errors import (
    AmassKitError,
    ArrayShapeError,
    InvalidValueError,
    NonFiniteError,
)
from ..io import read
from ..ops import add_pose_noise, canonicalise, mirror, resample, rotate_about_vertical, trim, trim_bounds
from ..rotations import convert
from ..sequence import Sequence
from ._config import FPS_RANGE, PrepareConfig

logger = logging.getLogger(__name__)


def _rng(seed: int, rel: str) -> np.random.Generator:
    digest = hashlib.sha256(rel.encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


_MODELS: dict[tuple[str, str, str], Any] = {}  # per process: body models by (folder, kind, gender)


def _body_model(folder: str, seq: Sequence) -> Any:
    """The body model ``seq`` belongs to (float64, on the CPU), loaded once per process."""
    key = (folder, seq.model.value, seq.gender.value)
    if key not in _MODELS:
        import torch

        from ..body import BodyModel

        _MODELS[key] = BodyModel.for_sequence(seq, model_dir=folder, dtype=torch.float64)
    return _MODELS[key]


def pelvis_offset(model: Any, seq: Sequence) -> np.ndarray:
    """The rest-pose pelvis (joint 0) of ``model`` for ``seq``'s shape: the point ``root_orient`` turns the body about,
    relative to ``trans``. ``(3,)``; ``(T, 3)`` when the sequence's DMPLs move it (they are shape components in
    AMASS's SMPL+H model, applied per frame)."""
    import torch

    use_dmpls = seq.dmpls is not None and model.num_dmpls > 0
    with torch.inference_mode():
        shaped = model.with_shape(model.sequence_betas(seq), dmpls=seq.dmpls if use_dmpls else None)
        return shaped.joints_rest[..., 0, :].numpy().astype(np.float64)


def _fields(
    path: str, seq: Sequence, config: PrepareConfig, model: Any = None, frames: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    dtype = np.dtype(config.dtype)
    out: dict[str, np.ndarray] = {}
    if frames is not None:
        out["frame"] = frames.astype(np.int32)
    for name in POSE_PARTS:
        value = getattr(seq, name)
        if value is not None:
            # in numpy (workers never import torch); quaternions with w >= 0, also for angles beyond pi
            out[name] = convert(value, source="rotvec", target=config.rotation).astype(dtype)
    out["trans"] = seq.trans.astype(dtype)
    if seq.dmpls is not None:
        out["dmpls"] = seq.dmpls.astype(dtype)
    if model is not None:
        import torch

        with torch.inference_mode():
            out["joints"] = model.sequence_joints(seq).numpy().astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        for name, value in out.items():
            if not np.isfinite(value).all():
                raise NonFiniteError(
                    path, f"{name} is not finite once prepared as {dtype} (values too large for it, or overflowing "
                          "in resampling or augmentation)"
                )  # fmt: skip
    return out


def _check_input(path: str, seq: Sequence) -> None:
    """What the reader accepts but prepare cannot use, as a typed error naming the file."""
    if not FPS_RANGE[0] <= seq.fps <= FPS_RANGE[1]:
        raise InvalidValueError(
            path,
            f"frame rate {seq.fps:g} fps is outside the {FPS_RANGE[0]:g}-{FPS_RANGE[1]:g} fps prepare accepts",
        )
    if seq.dmpls is not None and seq.dmpls.shape[-1] == 0:
        raise ArrayShapeError(path, "'dmpls' has width 0: an empty optional field (leave it out, or give the 8 "
                                    "DMPL coefficients per frame)")  # fmt: skip


def process_sequence(
    root: str, rel: str, config: PrepareConfig
) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    """Everything ``prepare`` stores for one file: the processed sequence and its augmented copies.

    Returns:
        ``(fields, meta)`` per output sequence (none when the sequence is too short after processing).

    Raises:
        AmassFileError: the file cannot be read or prepared (named in the error).
    """
    path = os.path.join(root, rel)
    seq = read(path, dtype=np.float64)
    _check_input(path, seq)
    if config.fps is not None:
        seq = resample(seq, config.fps)
    first = 0
    if config.trim_keep is not None or config.trim_seconds is not None:
        try:
            first = trim_bounds(seq.num_frames, seq.fps, keep=config.trim_keep, seconds=config.trim_seconds)[
                0
            ]
            seq = trim(seq, keep=config.trim_keep, seconds=config.trim_seconds)
        except ValueError:
            return []
    model = None if config.body_models is None else _body_model(config.body_models, seq)
    pelvis = None if model is None else pelvis_offset(model, seq)
    if config.canonicalise:
        seq = canonicalise(seq, pelvis_offset=pelvis)
    rng = _rng(config.seed, rel)
    frames = None
    if config.frame_fraction is not None:
        count = max(1, math.floor(seq.num_frames * config.frame_fraction))
        picked = np.sort(rng.choice(seq.num_frames, size=count, replace=False))
        frames = first + picked  # each kept frame's index in the (resampled) file
        arrays = {n: a[picked] for n, a in seq.arrays().items() if n != "betas"}
        seq = seq.replace(**arrays)
        if pelvis is not None and pelvis.ndim == 2:
            pelvis = pelvis[picked]
    if seq.num_frames < config.min_frames:
        return []
    variants: list[tuple[Sequence, str]] = [(seq, "none")]
    for _ in range(config.rotations):
        angle = float(rng.uniform(-math.pi, math.pi))
        variants.append((rotate_about_vertical(seq, angle, pelvis_offset=pelvis), f"rotate:{angle:.6f}"))
    if config.mirror:
        variants += [
            (mirror(s, pelvis_offset=pelvis), f"{a}+mirror" if a != "none" else "mirror")
            for s, a in list(variants)
        ]
    if config.noise > 0:
        variants = [(v if a == "none" else add_pose_noise(v, config.noise, rng=rng), a) for v, a in variants]
    prov = seq.provenance
    out = []
    for variant, augmentation in variants:
        meta = {"source": rel, "dataset": prov.dataset, "subject": prov.subject, "name": prov.name,
                "augmentation": augmentation, "model": seq.model.value}  # fmt: skip
        joints_model = model if config.stores_joints else None
        out.append((_fields(path, variant, config, joints_model, frames), meta | {"fps": variant.fps,
                    "gender": variant.gender.value, "betas": variant.betas.astype(np.float32).tolist()}))  # fmt: skip
    return out


def _schema(fields: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
    """What the store needs every sequence to agree on: field names, dtypes and per-frame shapes."""
    return {name: [str(value.dtype), list(value.shape[1:])] for name, value in sorted(fields.items())}


def work_one(root: str, rel: str, config: PrepareConfig, work: str, key: str) -> tuple[str, str | None]:
    """Process one file into ``work/<key>.npz`` (atomically); returns (key, error or None).

    Never raises for a file that cannot be prepared: the error comes back as ``"ErrorType: path: message"``.
    """
    target = Path(work) / f"{key}.npz"
    try:
        results = process_sequence(root, rel, config)
    except AmassKitError as exc:
        return key, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # one file must not end the run: named, listed, and logged with its traceback
        logger.debug("unexpected error preparing %s", rel, exc_info=True)
        return key, f"{type(exc).__name__}: {os.path.join(root, rel)}: {exc}"
    arrays: dict[str, np.ndarray] = {}
    metas = []
    for k, (fields, meta) in enumerate(results):
        for name, value in fields.items():
            arrays[f"{k}/{name}"] = value
        metas.append(meta)
    arrays["meta"] = np.array(json.dumps(metas, sort_keys=True))
    arrays["schema"] = np.array(json.dumps(_schema(results[0][0]) if results else None))
    with atomic_open(target, fsync=False) as fp:
        np.savez(fp, **arrays)  # type: ignore[arg-type]
    return key, None


def load_results(path: Path) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    with np.load(path, allow_pickle=False) as data:
        metas = json.loads(str(data["meta"]))
        out = []
        for k, meta in enumerate(metas):
            prefix = f"{k}/"
            fields = {key[len(prefix) :]: data[key] for key in data.files if key.startswith(prefix)}
            out.append((fields, meta))
    return out


def load_summary(path: Path) -> tuple[dict[str, list[Any]] | None, int]:
    """A result's field layout (None when it holds no sequence) and its number of sequences, without its arrays."""
    with np.load(path, allow_pickle=False) as data:
        schema = json.loads(str(data["schema"]))
        count = len(json.loads(str(data["meta"])))
    return (schema if isinstance(schema, dict) else None), count


# ---------------------------------------------------------------------------------------------- the plan
