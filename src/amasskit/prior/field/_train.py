"""Training a distance field on amasskit's prior training data (``amasskit prior train``).

The loss, per step, over a batch of noisy poses ``q`` with target distances ``d`` and a batch of clean poses ``c``::

    w_dist * mean |f(q) - d|  +  w_manifold * mean |f(c)|  +  w_eikonal * mean_(b, j) (|grad_(q_j) f(q_b)| - 1)^2
                              +  w_gradient * mean_(b, j) |grad_(q_j) f(q_b) - g*_(b, j)|^2

(the eikonal norm per joint over its 4 components), AdamW. The last term is amasskit's (0 in both presets): ``g*``
is the true distance's gradient, known from each sample's nearest clean pose ``x`` (stored with the data): per joint
the unit tangent at ``q_j`` pointing away from ``x_j`` (geodesic; times ``sin theta_j`` for ``posendf``), joints at
the nearest pose's own rotation left out. Values alone leave the field's direction in the 80-odd dimensions off the
manifold free, and projection follows the direction: with this term it leads to the manifold. Targets are the training set's distances (its metric,
summed over the joints): the nearest clean pose's (``target="nearest"``) or the mean of the ``k`` stored
(``"mean"``). Batches come through :class:`amasskit.data.Loader` (exactly once per epoch across workers and ranks,
resumable mid-epoch); clean poses from the pose set the data was made from.

Output folder::

    checkpoint.pt   the latest state (model, optimiser, loaders, step), written atomically every
                    ``checkpoint_every`` steps; a run started again on the same folder resumes from it and ends with
                    the same weights as an uninterrupted run
    model.pt        the trained model: config, weights, units, the data's manifest, the last validation
    best.pt         the model at its best validation MAE
    train.csv       step, epoch, losses, learning rate, poses per second (every ``log_every`` steps)
    val.csv         step, MAE, Spearman, AUROC, mean distance of clean poses (every ``val_every`` steps)
    tensorboard/    the same scalars, where the ``tensorboard`` package is installed

Validation, on a held-out training set (``val_data``, made from the held-out split's pose set): the mean absolute
error against the target, Spearman's rank correlation with it, and the AUROC of telling the split's clean poses
from its noisy ones by the predicted distance.

Several GPUs (or CPU processes): start with ``torchrun --nproc-per-node N -m amasskit prior train CONFIG``; every
rank takes ``batch_size / N`` of each batch (together exactly the single-process batch), gradients are averaged by
DistributedDataParallel, rank 0 validates and writes.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
import operator
import os
import pickle
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from ..._util.atomic import atomic_open
from ..._util.configfile import check_choice, config_values
from ..._util.hardware import check_memory, cpu_has_fast_bf16, torch_device
from ..._util.integrity import damaged_member
from ..._util.locking import exclusive_lock
from ..._util.paths import resolve_fields, user_path
from ..._util.sampling import even_indices
from ...choices import Precision, values
from ...data import IndexBatch, Loader
from ...errors import (
    CheckpointError,
    ConfigError,
    InvalidArgumentError,
    NotAmasskitModelError,
    OutputExistsError,
)
from ..poses import PoseSet, TrainingData
from ._network import ACTIVATIONS, DistanceField, DistanceFieldConfig
from ._scores import auroc, spearman

logger = logging.getLogger(__name__)

__all__ = [
    "TRAIN_PRESETS",
    "TrainConfig",
    "adamw_optimizer",
    "evaluate_field",
    "load_model",
    "train",
    "use_bf16",
]

MODEL_FORMAT: Final[str] = "amasskit.prior-model"
MODEL_VERSION: Final[int] = 1

TRAIN_PRESETS: Final[dict[str, dict[str, Any]]] = {
    # Pose-NDF's configs/amass.yaml: LeakyReLU, Adam at 1e-5, the three losses weighted 1
    "posendf": {"activation": "lrelu", "lr": 1e-5, "w_dist": 1.0, "w_manifold": 1.0, "w_eikonal": 1.0},
    # NRDF's configs/train.yaml: Softplus(100), Adam at 1e-4, distance 0.5, manifold 0.1, no eikonal term
    "nrdf": {"activation": "softplus", "lr": 1e-4, "w_dist": 0.5, "w_manifold": 0.1, "w_eikonal": 0.0},
}
TARGETS: Final[tuple[str, ...]] = ("nearest", "mean")
PRECISIONS: Final[tuple[str, ...]] = values(Precision)
SCHEDULES: Final[tuple[str, ...]] = ("constant", "cosine")
# settings that change only where or how often a run writes: a run may resume with other values of these
_NOT_IDENTITY: Final[frozenset[str]] = frozenset(
    {"out", "steps", "val_every", "checkpoint_every", "log_every", "workers", "device"}
)


def _widths(value: Any) -> tuple[int, ...]:
    """``dims`` as a tuple of widths, from a sequence or a comma-separated string.

    Raises:
        ConfigError: anything else (``a,b``, ``[1.5]``, a number).
    """
    items = value.split(",") if isinstance(value, str) else value
    try:
        widths = tuple(operator.index(d) if not isinstance(d, str) else int(d) for d in items)
    except (TypeError, ValueError):
        raise ConfigError(
            f"dims must be integer widths, comma-separated, got {value!r}", key="dims"
        ) from None
    return widths


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """What ``amasskit prior train`` does (every key is also a config-file key).

    Attributes:
        data: a training set (``amasskit prior data``); out: the output folder.
        val_data: a held-out training set for validation (none: no validation).
        clean: the pose set of the manifold term (default: the one ``data`` was made from).
        preset: ``nrdf`` or ``posendf`` (:data:`TRAIN_PRESETS`: activation, learning rate, loss weights), which the
            keys below override.
        activation, beta, dims, parents: the network (:class:`DistanceFieldConfig`); parents ``fixed`` (the tree)
            by default, ``official`` for Pose-NDF's released map.
        lr, weight_decay: AdamW's. lr_schedule: ``constant`` (as the originals) or ``cosine`` (decaying to 0 at
            ``steps``: several times more accurate for the same budget); warmup: steps of linear warm-up first.
        w_dist, w_manifold, w_eikonal, w_gradient: the loss weights (``w_gradient``: the gradient supervision).
        target: ``nearest`` or ``mean`` (of the ``k`` stored distances).
        batch_size: noisy poses per step (over all ranks); manifold_batch: clean poses per step (default the same).
        steps, val_every, val_samples, checkpoint_every, log_every: the schedule.
        seed: initial weights and batch order. device: ``cpu``, ``cuda``, ``cuda:N``.
        precision: ``fp32``, ``bf16`` (autocast: matrix products in bfloat16, weights and losses float32) or
            ``auto``: bf16 on GPUs with bfloat16 and CPUs with AVX512-BF16 (4x the float32 products), else fp32.
        workers: DataLoader worker processes.
    """

    data: str
    out: str
    val_data: str | None = None
    clean: str | None = None
    preset: str = "nrdf"
    activation: str | None = None
    beta: float = 100.0
    dims: tuple[int, ...] = (256, 512, 1024, 512, 256, 64)
    parents: str = "fixed"
    lr: float | None = None
    lr_schedule: str = "constant"
    warmup: int = 0
    weight_decay: float = 0.0
    w_dist: float | None = None
    w_manifold: float | None = None
    w_eikonal: float | None = None
    w_gradient: float = 0.0
    target: str = "nearest"
    batch_size: int = 256
    manifold_batch: int | None = None
    steps: int = 100_000
    val_every: int = 1000
    val_samples: int = 20_000
    checkpoint_every: int = 1000
    log_every: int = 100
    seed: int = 0
    device: str = "cpu"
    precision: str = "auto"
    workers: int = 0

    def __post_init__(self) -> None:
        resolve_fields(self, ("data", "out", "val_data", "clean"))
        check_choice("preset", self.preset, TRAIN_PRESETS)
        check_choice("target", self.target, TARGETS)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("lr_schedule", self.lr_schedule, SCHEDULES)
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ConfigError(f"warmup must be an integer >= 0, got {self.warmup!r}", key="warmup")
        if self.activation is not None:
            check_choice("activation", self.activation, ACTIVATIONS)
        for key in (
            "batch_size",
            "steps",
            "val_every",
            "val_samples",
            "checkpoint_every",
            "log_every",
            "manifold_batch",
        ):
            value = getattr(self, key)
            if key == "manifold_batch" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} must be an integer >= 1, got {value!r}", key=key)
        for key in ("lr", "w_dist", "w_manifold", "w_eikonal", "w_gradient", "weight_decay"):
            value = getattr(self, key)
            if value is not None and not (
                isinstance(value, (int, float)) and value >= 0 and math.isfinite(value)
            ):
                raise ConfigError(f"{key} must be a number >= 0, got {value!r}", key=key)
        object.__setattr__(self, "dims", _widths(self.dims))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be an integer from 0 to 2**63 - 1, got {self.seed!r}", key="seed")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ConfigError(f"workers must be an integer >= 0, got {self.workers!r}", key="workers")
        try:
            torch_device(self.device, what="device")
        except InvalidArgumentError as exc:
            raise ConfigError(str(exc), key="device") from None
        try:
            self.model_config(metric="geodesic")
        except InvalidArgumentError as exc:
            raise ConfigError(str(exc), key="dims") from None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TrainConfig:
        """From a config file's mapping, flags applied (unknown keys are an error; ``data`` and ``out`` are needed).

        Raises:
            ConfigError: an unknown or missing key, or a bad value (named).
        """
        values = config_values(cls, data, required=("data", "out"), what="training config")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    def setting(self, key: str) -> Any:
        """A key's value with the preset applied."""
        value = getattr(self, key)
        return TRAIN_PRESETS[self.preset].get(key) if value is None else value

    def model_config(self, *, metric: str) -> DistanceFieldConfig:
        return DistanceFieldConfig(
            parents=self.parents,
            activation=self.setting("activation"),
            beta=self.beta,
            dims=self.dims,
            metric=metric,
            reduction="sum",
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["dims"] = list(self.dims)
        return out

    def identity(self) -> dict[str, Any]:
        """What the result depends on (a run resumes only a checkpoint of the same identity)."""
        out = {k: v for k, v in self.to_dict().items() if k not in _NOT_IDENTITY}
        out |= {k: self.setting(k) for k in ("activation", "lr", "w_dist", "w_manifold", "w_eikonal")}
        return out


def true_gradient(
    quat: torch.Tensor, near: torch.Tensor, *, metric: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient of the distance to the pose ``near (B, J, 4)`` at unit ``quat (B, J, 4)``, per joint, and
    ``(B, J)`` where it is defined (the joint is not at ``near``'s rotation).

    ``d/dq_j acos|c_j| = -s (x_j - c_j q_j) / sin(theta_j)`` (``c_j = <q_j, x_j>``, ``s`` its sign; a unit tangent) for
    ``geodesic``; without the division for ``posendf``."""
    c = (quat * near).sum(-1, keepdim=True)
    sign = torch.where(c < 0, -1.0, 1.0)
    tangent = sign * near - c.abs() * quat  # the part of +-x orthogonal to q: its norm is sin(theta)
    sine = tangent.norm(dim=-1, keepdim=True)
    valid = (sine > 1e-4).squeeze(-1)
    if metric == "geodesic":
        tangent = tangent / sine.clamp_min(1e-4)
    return -tangent, valid.to(quat.dtype)


def learning_rate(config: TrainConfig, step: int) -> float:
    """The learning rate of step ``step`` (from 0)."""
    lr = float(config.setting("lr"))
    if step < config.warmup:
        return lr * (step + 1) / config.warmup
    if config.lr_schedule == "cosine":
        span = max(1, config.steps - config.warmup)
        return lr * 0.5 * (1.0 + math.cos(math.pi * min(step - config.warmup, span) / span))
    return lr


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether ``precision`` means bfloat16 autocast on ``device``."""
    if precision == "bf16":
        return True
    if precision == "fp32":
        return False
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return device.type == "cpu" and cpu_has_fast_bf16()


class _Rows:
    """Rows of ``.npy`` arrays for :class:`amasskit.data.Loader`: ``dataset[IndexBatch] -> {name: (B, ...)}``.

    The arrays are memory-mapped on first use in each process (a worker gets paths, not copies)."""

    def __init__(self, files: Mapping[str, Path], count: int, target: str = "nearest") -> None:
        self.files, self.count, self.target = dict(files), count, target
        self._arrays: dict[str, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": None}

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, key: IndexBatch) -> dict[str, torch.Tensor]:
        if self._arrays is None:
            self._arrays = {name: np.load(path, mmap_mode="r") for name, path in self.files.items()}
        rows = np.asarray(key.indices, dtype=np.int64)
        out = {"pose": torch.from_numpy(np.ascontiguousarray(self._arrays["pose"][rows], dtype=np.float32))}
        if "neighbour" in self._arrays:
            near = np.asarray(self._arrays["neighbour"][rows, 0])
            out["near"] = torch.from_numpy(
                np.ascontiguousarray(self._arrays["clean"][near], dtype=np.float32)
            )
        if "distance" in self._arrays:
            d = np.asarray(self._arrays["distance"][rows], dtype=np.float64)
            out["dist"] = torch.from_numpy(
                (d[:, 0] if self.target == "nearest" else d.mean(1)).astype(np.float32)
            )
        return out


def _cycle(loader: Loader) -> Iterator[dict[str, torch.Tensor]]:
    """``loader``'s batches forever, epoch after epoch (its state resumes where it stands)."""
    while True:
        yield from loader
        loader.set_epoch(loader.sampler.epoch + 1)


def evaluate_field(
    model: torch.nn.Module,
    noisy: np.ndarray,
    target: np.ndarray,
    clean: np.ndarray,
    *,
    batch: int = 8192,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """A distance field's fit: ``mae`` and ``spearman`` of ``f(noisy)`` against ``target (N,)``, ``auroc`` of
    telling ``noisy (N, J, 4)`` from ``clean (M, J, 4)`` by ``f``, and ``clean_mean`` (mean ``f(clean)``)."""

    def run(poses: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for s in range(0, len(poses), batch):
                q = torch.from_numpy(np.ascontiguousarray(poses[s : s + batch], dtype=np.float32)).to(device)
                out.append(model(q).float().cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    was_training = model.training
    model.eval()
    try:
        pred, on_manifold = run(noisy), run(clean)
    finally:
        model.train(was_training)
    target = np.asarray(target, dtype=np.float64)
    return {
        "mae": float(np.abs(pred - target).mean()),
        "spearman": spearman(pred, target),
        "auroc": auroc(on_manifold, pred),
        "clean_mean": float(on_manifold.mean()),
    }


#: a model whose recorded validation AUROC (telling near poses from far ones; chance is 0.5) is below this is
#: reported as near chance when loaded
NEAR_CHANCE_AUROC: Final[float] = 0.7


#: a model whose recorded mean distance on clean held-out poses is above this many radians a joint is reported as
#: not reaching zero on the manifold when loaded (projection's default tolerance is 1e-3 a joint)
OFF_MANIFOLD_PER_JOINT: Final[float] = 2e-3


def _warn_if_poor(path: str | os.PathLike[str], metrics: Any, *, joints: int) -> None:
    """Say, when a model is loaded, what its recorded validation shows it cannot do (measured: README, 'A usable
    prior')."""
    if not isinstance(metrics, dict):
        return
    auroc, clean = metrics.get("auroc"), metrics.get("clean_mean")
    if isinstance(auroc, (int, float)) and auroc < NEAR_CHANCE_AUROC:
        logger.warning(
            "%s: its validation AUROC is %.2f (chance: 0.50): it barely tells clean poses from noisy ones, "
            "and sampling, interpolation, denoising and fitting with it may be worse than with no prior; "
            "train longer or on more data (README: 'A usable prior')",
            path,
            auroc,
        )
    elif isinstance(clean, (int, float)) and clean > OFF_MANIFOLD_PER_JOINT * joints:
        logger.warning(
            "%s: its mean distance on clean held-out poses is %.3g (%.2g a joint; a prior's is near 0): "
            "denoise and fit at their default prior weight pull poses toward distance 0 and so off the "
            "poses it learnt; lower --prior-weight (1e-4 for a model trained for minutes on a CPU), or "
            "train longer (README: 'A usable prior')",
            path,
            clean,
            clean / joints,
        )


def _write_model(path: Path, model: DistanceField, extra: Mapping[str, Any]) -> None:
    payload = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "model_config": model.config.to_dict(),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_open(path) as fp:
        fp.write(buffer.getvalue())


def _read_payload(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    damaged = damaged_member(path)
    if damaged is not None:
        raise CheckpointError(
            path, f"damaged: {damaged} fails its checksum (a changed or truncated file); nothing was loaded"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            path,
            "refused: it holds more than tensors and plain data, and loading it would run "
            "code (amasskit loads checkpoints with weights_only only)",
        ) from None
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(
            path, f"not a readable amasskit model ({type(exc).__name__}: {first})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise NotAmasskitModelError(
            path, "not an amasskit prior model (for the original checkpoints: load_official)"
        )
    if payload.get("version") != MODEL_VERSION:
        raise CheckpointError(
            path, f"model format version {payload.get('version')}, this amasskit reads {MODEL_VERSION}"
        )
    return payload


def load_model(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> DistanceField:
    """A model trained by amasskit (``model.pt``, ``best.pt`` or ``checkpoint.pt``), in evaluation mode.

    Raises:
        CheckpointError: not an amasskit model file, another format version, weights that do not fit.
    """
    payload = _read_payload(user_path(path))
    try:
        config = DistanceFieldConfig.from_dict(payload["model_config"])
        stored = sum(t.numel() for t in payload["model_state"].values())
        if (
            config.mlp_weights() > stored
        ):  # checked before the network is allocated (widths of 200,000: 160 GB)
            raise CheckpointError(
                path,
                f"its config ({config.dims} widths) needs {config.mlp_weights():,} weights at "
                f"least, the file holds {stored:,}: they do not fit",
            )
        model = DistanceField(config)
        model.load_state_dict(payload["model_state"])
    except (KeyError, TypeError, AttributeError, RuntimeError, InvalidArgumentError) as exc:
        raise CheckpointError(path, f"the weights do not fit the recorded config: {exc}") from None
    bad = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(path, f"weights that are not finite (NaN or inf) in {', '.join(bad[:3])}")
    model.info = {k: payload.get(k) for k in ("data", "metrics", "metrics_step", "step", "train_config")}  # type: ignore[assignment]
    _warn_if_poor(path, payload.get("metrics"), joints=model.config.joints)
    return model.to(map_location).eval()


class _Logs:
    """train.csv, val.csv and TensorBoard scalars (rank 0); on resume, rows past the checkpoint are dropped."""

    def __init__(self, out: Path, step: int, *, enabled: bool) -> None:
        self.out, self.enabled = out, enabled
        self.writer: Any = None
        if not enabled:
            return
        for name in ("train.csv", "val.csv"):
            path = out / name
            if path.exists():
                rows = list(csv.reader(path.read_text().splitlines()))
                keep = [rows[0], *[r for r in rows[1:] if r and int(r[0]) <= step]] if rows else []
                with atomic_open(path) as fp:
                    text = io.StringIO()
                    csv.writer(text, lineterminator="\n").writerows(keep)
                    fp.write(text.getvalue().encode())
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.info(
                "TensorBoard logs need the tensorboard package (pip install 'amasskit[train]'); CSV only"
            )
        else:
            self.writer = SummaryWriter(str(out / "tensorboard"), purge_step=step + 1 if step else None)

    def row(self, name: str, values: Mapping[str, float | int]) -> None:
        if not self.enabled:
            return
        path = self.out / name
        new = not path.exists()
        with path.open("a", newline="") as fp:
            writer = csv.writer(fp, lineterminator="\n")
            if new:
                writer.writerow(list(values))
            writer.writerow([f"{v:.7g}" if isinstance(v, float) else v for v in values.values()])
        if self.writer is not None:
            group = name.removesuffix(".csv")
            for key, value in values.items():
                if key not in ("step", "epoch"):
                    self.writer.add_scalar(f"{group}/{key}", value, int(values["step"]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _world() -> tuple[int, int, int]:
    """(world size, rank, local rank) from torchrun's environment; initialises the process group if needed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 1, 0, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = (
            "nccl"
            if torch.cuda.is_available() and os.environ.get("AMASSKIT_DIST_BACKEND") != "gloo"
            else "gloo"
        )
        dist.init_process_group(backend=backend)
    return dist.get_world_size(), dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))


def train(
    config: TrainConfig,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int, Mapping[str, float]], None] | None = None,
    stop_after: int | None = None,
    wait: float = 0.0,
) -> Path:
    """Train (or resume training) a distance field; returns the path of ``model.pt``.

    Args:
        overwrite: replace a checkpoint of another config in ``out`` (else an error).
        progress: called with ``(step, steps, figures)`` after every logged step and every validation: the mean
            losses since the last log (from step ``figures["loss_step"]``) and the last validation's figures (from
            step ``figures["val_step"]``, where there was one).
        stop_after: stop (after a checkpoint) once this many steps are done, as if killed there (for tests).
        wait: seconds to wait for another run training into ``out`` to finish (0: refuse at once).

    Raises:
        StoreError: the training data or a pose set is not readable. ConfigError: a bad config.
        OutputExistsError: ``out`` holds a run of another config and not ``overwrite``.
        BusyError: another run trains into ``out``.
    """
    world, rank, local_rank = _world()
    out = Path(config.out)
    lock = (
        exclusive_lock(out.with_name(f".{out.name}.lock"), what=f"prior train into {out}", wait=wait)
        if rank == 0
        else contextlib.nullcontext()
    )
    with lock:
        return _train(
            config,
            out,
            world,
            rank,
            local_rank,
            overwrite=overwrite,
            progress=progress,
            stop_after=stop_after,
        )


def _device(config: TrainConfig, world: int, local_rank: int) -> torch.device:
    """The run's device (each rank its own GPU under torchrun).

    Raises:
        ConfigError: CUDA asked for where torch sees none.
    """
    device = torch.device(config.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda asked for, but torch sees no CUDA device", key="device")
        device = torch.device("cuda", local_rank if world > 1 else (device.index or 0))
        torch.cuda.set_device(device)
    return device


def _resume_state(
    out: Path, config: TrainConfig, identity: Mapping[str, Any], *, overwrite: bool
) -> dict[str, Any] | None:
    """The checkpoint of this run to resume from, or None to start afresh (none, or another run's replaced with
    ``overwrite``).

    Raises:
        OutputExistsError: ``out`` holds a folder amasskit did not make, or another run's, without ``overwrite``.
    """
    _check_output_folder(out, identity, overwrite=overwrite)
    checkpoint = out / "checkpoint.pt"
    if not checkpoint.exists():
        return None
    state = _read_payload(checkpoint)
    if state.get("identity") != identity:
        if not overwrite:
            raise OutputExistsError(
                f"{out} holds a run of {_what_differs(state.get('identity'), identity)}; "
                "pass overwrite (--overwrite) to replace it, or choose another out"
            )
        return None
    _check_extension(out, config, state)
    return state


def _start_output(out: Path, config: TrainConfig, identity: Mapping[str, Any], *, fresh: bool) -> None:
    """The run's folder with its marker and config (rank 0); a fresh run first removes an earlier run's files."""
    out.mkdir(parents=True, exist_ok=True)
    if fresh:
        for name in _RUN_FILES:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "tensorboard", ignore_errors=True)
    with atomic_open(out / RUN_MARKER) as fp:
        fp.write(
            (
                json.dumps({"format": "amasskit.prior-run", "identity": identity}, sort_keys=True) + "\n"
            ).encode()
        )
    with atomic_open(out / "config.json") as fp:
        fp.write((json.dumps(config.to_dict(), indent=1) + "\n").encode())


def _new_model(model_config: DistanceFieldConfig, data: TrainingData, seed: int) -> DistanceField:
    """A network of seeded weights whose output layer starts at the data's median target distance: the output
    activation (ReLU, Softplus) starts in its linear part, where a start near or below 0 leaves it dead (no gradient:
    every output 0, for good).

    Raises:
        MemoryError: (:func:`check_memory`) weights, gradients and AdamW's two moments that do not fit, before any is
            allocated.
    """
    check_memory(16 * model_config.mlp_weights(), f"training a distance field of widths {model_config.dims}")
    model = DistanceField(model_config)
    model.reset_parameters(generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        last = model.mlp[-1]
        assert isinstance(last, torch.nn.Linear)
        last.bias.fill_(
            float(np.median(np.asarray(data.arrays["distance"][even_indices(len(data), 100_000), 0])))
        )
    return model


def _loaders(
    config: TrainConfig, data: TrainingData, poses: PoseSet, world: int, rank: int
) -> tuple[Loader, Loader]:
    """This rank's loaders of noisy samples (with their targets, and nearest poses where the gradient loss needs
    them) and of clean poses, seeded.

    Raises:
        ConfigError: batches larger than the sets.
    """
    clean_batch = config.manifold_batch or config.batch_size
    files = {"pose": data.path / "noisy.npy", "distance": data.path / "distance.npy"}
    if config.w_gradient > 0:  # the gradient's target needs each sample's nearest pose
        files |= {"neighbour": data.path / "neighbour.npy", "clean": Path(poses.path) / "fields" / "quat.npy"}
    noisy_rows = _Rows(files, len(data), config.target)
    clean_rows = _Rows({"pose": Path(poses.path) / "fields" / "quat.npy"}, len(poses))
    options: dict[str, Any] = {
        "num_workers": config.workers,
        "num_replicas": world,
        "rank": rank,
        "drop_last": True,
        "even": True,
    }
    if len(data) < config.batch_size or len(poses) < clean_batch:
        raise ConfigError(
            f"batch sizes {config.batch_size}/{clean_batch} exceed the {len(data)} samples or {len(poses)} clean poses",
            key="batch_size",
        )
    return (
        Loader(noisy_rows, config.batch_size // world, seed=config.seed, **options),
        Loader(clean_rows, clean_batch // world, seed=config.seed + 1, **options),
    )


def _losses(
    net: torch.nn.Module,
    model: DistanceField,
    batch: Mapping[str, torch.Tensor],
    clean: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
    *,
    metric: str,
    device: torch.device,
    bf16: bool,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One step's weighted loss and its parts (``dist``, ``manifold``, ``eikonal``, ``gradient``): the distance of
    the noisy poses to their targets, the clean poses' distance to 0, the gradient's norm to 1 and its direction to
    the true gradient's (the last two where weighted)."""
    needs_grad = weights["w_eikonal"] > 0 or weights["w_gradient"] > 0
    q = batch["pose"].to(device, non_blocking=True).requires_grad_(needs_grad)
    target = batch["dist"].to(device, non_blocking=True)
    c = clean["pose"].to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        pred = net(q).float()
        # the module itself: one call of the DDP wrapper a step (its gradients are averaged once)
        on_manifold = model(c).float()
    loss_dist = (pred - target).abs().mean()
    loss_man = on_manifold.abs().mean()
    loss = weights["w_dist"] * loss_dist + weights["w_manifold"] * loss_man
    loss_eik = loss_grad = torch.zeros((), device=device)
    if needs_grad:
        (grad,) = torch.autograd.grad(pred.sum(), q, create_graph=True)
        grad = grad.float()
        if weights["w_eikonal"] > 0:
            loss_eik = (grad.norm(dim=-1) - 1).pow(2).mean()
            loss = loss + weights["w_eikonal"] * loss_eik
        if weights["w_gradient"] > 0:
            want, valid = true_gradient(q.detach(), batch["near"].to(device), metric=metric)
            loss_grad = ((grad - want).pow(2).sum(-1) * valid).sum() / valid.sum().clamp_min(1)
            loss = loss + weights["w_gradient"] * loss_grad
    return loss, {"dist": loss_dist, "manifold": loss_man, "eikonal": loss_eik, "gradient": loss_grad}


def _run_inputs(
    config: TrainConfig,
) -> tuple[TrainingData, PoseSet, str, DistanceFieldConfig, dict[str, Any]]:
    """What a run reads: its training set, the clean pose set, the set's metric, the network's settings (the set's
    joint count), and the run's identity: its settings and the training sets' own ids (a set made again at the same
    path is other data: the run does not resume onto it)."""
    data = TrainingData(config.data)
    poses = PoseSet(config.clean) if config.clean else data.pose_set()
    metric = str(data.manifest["metric"]["name"])
    J = int(data.arrays["noisy"].shape[1])
    if poses.quat.shape[1] != J:
        raise ConfigError(
            f"the clean pose set has {poses.quat.shape[1]} joints, the training data {J}", key="clean"
        )
    model_config = dataclasses.replace(config.model_config(metric=metric), joints=J)
    identity = config.identity() | {
        "data_id": data.manifest.get("experiment_id"),
        "clean_id": poses.experiment_id,
        "val_id": TrainingData(config.val_data).manifest.get("experiment_id") if config.val_data else None,
    }
    return data, poses, metric, model_config, identity


class _Meter:
    """The training losses summed since the last log row, and the time since it."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.sums = dict.fromkeys(("loss", "dist", "manifold", "eikonal", "gradient"), 0.0)
        self.counted, self.started = 0, time.perf_counter()

    def add(self, loss: torch.Tensor, parts: Mapping[str, torch.Tensor]) -> None:
        for key, value in (("loss", loss), *parts.items()):
            self.sums[key] += float(value.detach())
        self.counted += 1

    def take(self, batch_size: int) -> tuple[dict[str, float], float]:
        """The mean of each loss since the last row and the poses a second; starts the next row."""
        elapsed = time.perf_counter() - self.started
        means = {k: v / self.counted for k, v in self.sums.items()}
        rate = self.counted * batch_size / max(elapsed, 1e-9)
        self._reset()
        return means, rate


def _train(
    config: TrainConfig,
    out: Path,
    world: int,
    rank: int,
    local_rank: int,
    *,
    overwrite: bool,
    progress: Callable[[int, int, Mapping[str, float]], None] | None,
    stop_after: int | None,
) -> Path:
    device = _device(config, world, local_rank)
    if config.batch_size % world or (config.manifold_batch or config.batch_size) % world:
        raise ConfigError(f"batch sizes must be divisible by the {world} ranks", key="batch_size")
    data, poses, metric, model_config, identity = _run_inputs(config)
    checkpoint = out / "checkpoint.pt"
    state = _resume_state(out, config, identity, overwrite=overwrite)
    if state is not None and int(state["step"]) >= config.steps and (out / "model.pt").exists():
        logger.info("%s: trained already (%d steps)", out, state["step"])
        return out / "model.pt"
    if rank == 0:
        _start_output(out, config, identity, fresh=state is None)

    model = _new_model(model_config, data, config.seed).to(device)
    lr = learning_rate(config, 0)
    optimizer = adamw_optimizer(model, lr, config.weight_decay)
    loader, clean_loader = _loaders(config, data, poses, world, rank)
    step, best = 0, math.inf
    if state is not None:
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer"])
        loader.load_state_dict(state["loaders"]["noisy"])
        clean_loader.load_state_dict(state["loaders"]["clean"])
        step, best = int(state["step"]), float(state.get("best", math.inf))
        logger.info("resuming %s at step %d", out, step)
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )
    bf16 = use_bf16(config.precision, device)
    weights = {k: float(config.setting(k)) for k in ("w_dist", "w_manifold", "w_eikonal", "w_gradient")}
    logs = _Logs(out, step, enabled=rank == 0)
    val = _validation_set(config) if config.val_data and rank == 0 else None
    data_record = {
        "path": str(data.path),
        "experiment_id": data.manifest.get("experiment_id"),
        "metric": data.manifest["metric"],
        "target": config.target,
        "manifest": json.loads(json.dumps(data.manifest)),
    }
    last_val: dict[str, float] = dict(state.get("metrics") or {}) if state else {}
    val_step = int(state.get("metrics_step", state["step"]) if state else 0)  # the step last_val is from
    batches, clean_batches = _cycle(loader), _cycle(clean_loader)
    meter = _Meter()
    last_means: dict[str, float] = {}
    try:
        while step < config.steps:
            batch, clean = next(batches), next(clean_batches)
            lr = learning_rate(config, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, parts = _losses(net, model, batch, clean, weights, metric=metric, device=device, bf16=bf16)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            meter.add(loss, parts)
            if step % config.log_every == 0 or step == config.steps:
                means, poses_per_s = meter.take(config.batch_size)
                logs.row(
                    "train.csv",
                    {
                        "step": step,
                        "epoch": loader.sampler.epoch,
                        **means,
                        "lr": lr,
                        "poses_per_s": poses_per_s,
                    },
                )
                last_means = means | {"loss_step": step}
                if progress:  # the validation figures are from an earlier step: said as val_step
                    progress(
                        step,
                        config.steps,
                        last_means | last_val | ({"val_step": val_step} if last_val else {}),
                    )
            if val is not None and (step % config.val_every == 0 or step == config.steps):
                last_val, val_step = evaluate_field(model, *val, device=device), step
                logs.row("val.csv", {"step": step, **last_val})
                if progress and last_means:
                    progress(step, config.steps, last_means | last_val | {"val_step": val_step})
                logger.info("step %d: validation %s", step, last_val)
                if last_val["mae"] < best:
                    best = last_val["mae"]
                    _write_model(
                        out / "best.pt",
                        model,
                        {
                            "data": data_record,
                            "metrics": last_val,
                            "step": step,
                            "train_config": config.to_dict(),
                        },
                    )
            done = step == config.steps or (stop_after is not None and step >= stop_after)
            if rank == 0 and (step % config.checkpoint_every == 0 or done):
                _write_model(
                    checkpoint,
                    model,
                    {
                        "identity": identity,
                        "step": step,
                        "best": best,
                        "metrics": last_val,
                        "metrics_step": val_step,
                        "optimizer": optimizer.state_dict(),
                        "loaders": {"noisy": loader.state_dict(), "clean": clean_loader.state_dict()},
                        "data": data_record,
                        "train_config": config.to_dict(),
                    },
                )
            if stop_after is not None and step >= stop_after and step < config.steps:
                return checkpoint
        if rank == 0:
            _write_model(
                out / "model.pt",
                model,
                {
                    "data": data_record,
                    "metrics": last_val,
                    "step": step,
                    "metrics_step": val_step,
                    "train_config": config.to_dict(),
                },
            )
    finally:
        logs.close()
        if world > 1:
            import torch.distributed as dist

            dist.barrier()
    return out / "model.pt"


#: the file that marks a folder as a `prior train` output (with the run's identity)
RUN_MARKER: Final[str] = ".amasskit-prior-run.json"
_RUN_FILES: Final[tuple[str, ...]] = (
    "train.csv",
    "val.csv",
    "model.pt",
    "best.pt",
    "checkpoint.pt",
    "config.json",
)


def _what_differs(before: Any, now: Mapping[str, Any]) -> str:
    """ "another config", or which training set changed, for the message refusing to resume."""
    if isinstance(before, dict):
        for key, what in (
            ("data_id", "the training set"),
            ("clean_id", "the clean pose set"),
            ("val_id", "the validation set"),
        ):
            if before.get(key) != now.get(key) and {k: v for k, v in before.items() if k != key} == {
                k: v for k, v in now.items() if k != key
            }:
                return f"other data ({what} is not the one it was trained on: {before.get(key)!r}, now {now.get(key)!r})"
    return "another config"


def _check_output_folder(out: Path, identity: Mapping[str, Any], *, overwrite: bool) -> None:
    """``out`` may hold nothing, or a `prior train` output (of this run, or another with ``overwrite``); a folder
    amasskit did not write is never emptied, whatever ``overwrite`` says.

    Raises:
        OutputExistsError: ``out`` is a file or a link, or holds files and is not a `prior train` output.
    """
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputExistsError(f"{out} is not a folder: choose another out")
    own = {Path(name) for name in (RUN_MARKER, *_RUN_FILES, "config.json")}
    present = list(out.iterdir()) if out.is_dir() else []
    # another rank (torchrun) may be writing the marker now: its staging file (.NAME.XXXX.tmp.EXT) is amasskit's own
    present = [
        p
        for p in present
        if not any(p.name.startswith(f".{o.stem}.") and p.name.endswith(f".tmp{o.suffix}") for o in own)
    ]
    if not present:
        return
    marker = out / RUN_MARKER
    if marker.is_file():
        return
    try:  # a run of an amasskit from before the marker: its checkpoint says so
        _read_payload(out / "checkpoint.pt")
        return
    except CheckpointError:
        pass
    theirs = sorted(p.name for p in present)[:5]
    raise OutputExistsError(
        f"{out} holds files amasskit did not write ({', '.join(theirs)}): not replaced, with or "
        "without overwrite; choose another out"
    )


def _check_extension(out: Path, config: TrainConfig, state: Mapping[str, Any]) -> None:
    """A run resumed with another ``steps`` than it was started with: fine where the learning rate of every step
    stays what it was (a constant schedule, past its warm-up), said in the log; refused for a cosine schedule, whose
    every rate depends on ``steps`` (a finished cosine run has decayed to 0: extending it trains at a rate near 0).

    Raises:
        ConfigError: a cosine run resumed with other steps.
    """
    before = int((state.get("train_config") or {}).get("steps", config.steps))
    done = int(state["step"])
    if before == config.steps:
        return
    if config.lr_schedule == "cosine":
        raise ConfigError(
            f"{out} holds a run with a cosine schedule over {before} steps ({done} done), which decays "
            f"the learning rate to 0 at step {before}: resuming it with steps {config.steps} would "
            f"change the rate of every step from {done} on. Finish it with --steps {before}, or start "
            "a new run (another --out, or --overwrite)",
            key="steps",
        )
    logger.info(
        "%s: the run of %d steps (%d done) goes on to %d steps at the same constant learning rate",
        out,
        before,
        done,
        config.steps,
    )


def adamw_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, fused where this torch supports it on the model's device (one kernel for all parameters: a sixth of a
    small CPU step went to the per-tensor loop), else the standard loop."""
    try:
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # pragma: no cover - old torch or an unsupported device
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


def _validation_set(config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(noisy, target, clean) of the held-out set: ``val_samples`` rows spread evenly, as many clean poses."""
    assert config.val_data is not None
    return TrainingData(config.val_data).held_out(config.val_samples, target=config.target)
