"""Distance-field training data in one job: noisy copies of every clean pose and their exact nearest clean poses.

Output (format ``amasskit.prior-data``, version 1), a folder of memory-mappable ``.npy`` arrays over the ``N = P S``
samples (``P`` source poses, every pose of the set or ``max_poses`` of them; ``S`` samples each, sample ``s`` of the
``i``-th source at row ``i S + s``)::

    manifest.json     format, version, experiment id, config, the pose set's id and size, counts, metric, noise
    noisy.npy         (N, J, 4) float32 XYZW, w >= 0
    source.npy        (N,) int64   the clean pose each sample was made from
    scheme.npy        (N,) int8    0 posendf, 1 nrdf, 2 haar
    sigma.npy         (N,) float32 its noise level
    distance.npy      (N, k) float64  distances to the k nearest clean poses, nearest first (ties: smaller id)
    neighbour.npy     (N, k) int64    their ids in the pose set

The job runs in chunks of clean poses. It writes into ``.<name>.partial`` beside the output, every chunk into its
rows of the final arrays, then a marker; a killed run resumes from the marked chunks, and the folder is renamed into
place when every chunk is done. Every row is a pure function of the pose set, the config and the row's number (noise
drawn per (seed, pose, sample), exact neighbours), so the bytes do not depend on the chunk size, the device, the
number of workers or the Dask cluster. One run per output at a time (``.<name>.lock``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from ..._util.atomic import atomic_open, replace_dir
from ..._util.configfile import check_choice
from ..._util.locking import exclusive_lock
from ..._util.paths import resolve_fields, user_path
from ..._util.sampling import even_indices
from ...errors import ConfigError, InvalidArgumentError, OutputExistsError, StoreError
from ._metric import METRIC_DEFINITIONS, METRICS
from ._noise import NOISE_SCHEMES, NoiseConfig, perturb
from ._search import PoseIndex
from ._sets import PoseSet, find_pose_set

logger = logging.getLogger(__name__)

__all__ = ["FORMAT", "TrainingData", "TrainingDataConfig", "build_training_data"]

FORMAT: Final[str] = "amasskit.prior-data"
FORMAT_VERSION: Final[int] = 1
_ARRAYS: Final[tuple[str, ...]] = ("noisy", "source", "scheme", "sigma", "distance", "neighbour")


@dataclass(frozen=True, kw_only=True)
class TrainingDataConfig:
    """What ``amasskit prior data`` does.

    Attributes:
        poses: a pose set (:func:`~amasskit.prior.build_pose_sets`). out: the output folder.
        samples_per_pose: noisy copies of each clean pose.
        noise: ``posendf``, ``nrdf``, ``haar`` or ``mixture`` (:class:`~amasskit.prior.NoiseConfig`); sigmas and
            weights: the scheme's levels and the mixture's weights (defaults there).
        metric: ``posendf`` or ``geodesic`` (:func:`~amasskit.prior.pose_distance`). k: nearest clean poses kept.
        seed: the noise's seed.
        max_poses: make samples of only this many clean poses, spread evenly over the set (a subset for a laptop;
            their neighbours are still searched in the whole set, so every row equals the full job's row).
        chunk: clean poses per chunk (memory: the chunk's ``chunk * samples_per_pose`` queries and their bounds).
        device: ``cpu`` or ``cuda`` (the search's matrix products). dask: a scheduler address (``tcp://...``): the
            chunks run on that cluster; the pose set and the output must be on storage every worker shares.
    """

    poses: str
    out: str
    samples_per_pose: int = 10
    noise: str = "nrdf"
    sigmas: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    weights: Mapping[str, float] | None = None
    metric: str = "geodesic"
    k: int = 5
    seed: int = 0
    max_poses: int | None = None
    chunk: int = 1024
    device: str = "cpu"
    dask: str | None = None

    def __post_init__(self) -> None:
        resolve_fields(self, ("poses", "out"))
        for key in ("samples_per_pose", "k", "chunk", "max_poses"):
            value = getattr(self, key)
            if key == "max_poses" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{key} must be an integer >= 1, got {value!r}", key=key)
        check_choice("noise", self.noise, NOISE_SCHEMES)
        check_choice("metric", self.metric, METRICS)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}", key="seed")
        try:
            self.noise_config()
        except InvalidArgumentError as exc:
            raise ConfigError(str(exc), key="sigmas") from None

    def noise_config(self) -> NoiseConfig:
        sigmas = {k: tuple(float(x) for x in v) for k, v in self.sigmas.items()}
        if self.weights is None:
            return NoiseConfig(self.noise, sigmas=sigmas)
        return NoiseConfig(self.noise, sigmas=sigmas, weights={k: float(v) for k, v in self.weights.items()})

    def settings(self) -> dict[str, Any]:
        """What the rows depend on (not where or how they are computed)."""
        return {
            "samples_per_pose": int(self.samples_per_pose),
            "noise": self.noise_config().describe(),
            "metric": self.metric,
            "k": int(self.k),
            "seed": int(self.seed),
            "max_poses": None if self.max_poses is None else int(self.max_poses),
        }


class TrainingData:
    """A training set opened for reading: :attr:`arrays` name -> read-only memory map, :attr:`manifest`.

    Raises:
        StoreError: not a complete training set of a known version.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = user_path(path)
        manifest = _read_manifest(self.path)
        if manifest is None:
            raise StoreError(
                self.path, "no amasskit.prior-data manifest: not a training set, or one being written"
            )
        if int(manifest.get("version", 0)) > FORMAT_VERSION:
            raise StoreError(
                self.path, f"training-set format {manifest['version']} is newer than this amasskit's"
            )
        self.manifest: dict[str, Any] = manifest
        self.arrays: dict[str, np.ndarray] = {}
        for name in _ARRAYS:
            file = self.path / f"{name}.npy"
            try:
                array = np.load(file, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise StoreError(file, f"unreadable array ({exc})") from None
            dtype, shape = manifest["arrays"][name]
            if str(array.dtype) != dtype or list(array.shape) != list(shape):
                raise StoreError(
                    file, f"holds {array.dtype} {array.shape}, the manifest says {dtype} {shape}"
                )
            self.arrays[name] = array

    def __len__(self) -> int:
        return int(self.manifest["samples"])

    def held_out(self, samples: int, *, target: str = "nearest") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A validation set from this (held-out) training set: ``noisy (n, J, 4)`` for ``samples`` rows spread evenly,
        their ``target (n,)`` distances (float64; ``nearest``: the nearest clean pose's, ``mean``: the mean of the
        ``k`` stored), and as many clean poses of its pose set ``(m, J, 4)``, spread evenly (training's validation
        and the evaluation's field fidelity)."""
        rows = even_indices(len(self), samples)
        noisy = np.asarray(self.arrays["noisy"][rows])
        distance = np.asarray(self.arrays["distance"][rows], dtype=np.float64)
        poses = self.pose_set()
        clean = np.asarray(poses.quat[even_indices(len(poses), samples)])
        return noisy, distance[:, 0] if target == "nearest" else distance.mean(1), clean

    def pose_set(self) -> PoseSet:
        """The clean pose set this training set was made from, as its manifest records it (resolved path and id).

        Raises:
            StoreError: no pose set at the recorded path any more, or another one there (its id or size differs
                from the one recorded): the rows' neighbours index the recorded set, never another.
        """
        recorded = self.manifest.get("poses") or {}
        path = recorded.get("path")
        if not isinstance(path, str):
            raise StoreError(self.path, "its manifest records no pose set: make the training set again")
        try:
            poses = PoseSet(path)
        except StoreError:
            raise StoreError(
                self.path,
                f"was made from the pose set {path}, which is not there any more: move or "
                "make it again, or make the training set again",
            ) from None
        want = (recorded.get("experiment_id"), recorded.get("count"))
        if (poses.experiment_id, len(poses)) != want:
            raise StoreError(
                self.path,
                f"was made from the pose set {path} of id {want[0]!r} ({want[1]} poses); "
                f"that path now holds another ({poses.experiment_id!r}, {len(poses)} poses): make the "
                "training set again from it, or restore that pose set",
            )
        return poses


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT else None


def _experiment_id(config: TrainingDataConfig, poses: PoseSet) -> str:
    text = json.dumps(
        [FORMAT_VERSION, config.settings(), poses.experiment_id, len(poses), poses.joints], sort_keys=True
    )
    return "prior-data-" + hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------------ the chunks

_CACHE: dict[tuple[Any, ...], tuple[PoseSet, PoseIndex]] = {}
_CACHE_LOCK = threading.Lock()


def _pose_set_identity(poses: str) -> tuple[Any, ...]:
    """What tells one pose set from another at the same path: the manifest's bytes and the pose file's identity
    (a pose set rewritten in place is a new folder swapped in: a new inode and modification time)."""
    folder = user_path(poses)
    try:
        manifest = (folder / "manifest.json").read_bytes()
        stat = (folder / "fields" / "quat.npy").stat()
    except OSError:
        return (str(folder),)  # PoseSet below names what is wrong
    digest = hashlib.sha256(manifest).hexdigest()
    return (str(folder), digest, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _index(poses: str, device: str) -> tuple[PoseSet, PoseIndex]:
    """The pose set and its search index, built once per process (a Dask worker keeps them between tasks) and built
    again when the pose set at that path is another one; searched under each job's metric
    (:meth:`PoseIndex.with_metric`)."""
    key = (*_pose_set_identity(poses), device)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE.clear()
            pose_set = PoseSet(poses)
            _CACHE[key] = (pose_set, PoseIndex(pose_set.quat, device=device))
        return _CACHE[key]


def sources(count: int, max_poses: int | None) -> np.ndarray:
    """The clean poses the job perturbs: all, or ``max_poses`` spread evenly over the set."""
    return np.arange(count, dtype=np.int64) if max_poses is None else even_indices(count, max_poses)


def run_chunk(
    poses: str, staging: str, start: int, stop: int, settings: Mapping[str, Any], device: str
) -> int:
    """Fill rows ``start * S : stop * S`` of the arrays in ``staging`` (sources ``start:stop``) and mark the chunk
    done; returns ``stop``."""
    pose_set, index = _index(poses, device)
    ids = sources(len(pose_set), settings.get("max_poses"))[start:stop]
    S, k = int(settings["samples_per_pose"]), int(settings["k"])
    noise = settings["noise"]
    config = NoiseConfig(
        noise["scheme"],
        sigmas={n: tuple(v) for n, v in noise["sigmas"].items()},
        **({"weights": noise["weights"]} if "weights" in noise else {}),
    )
    clean = np.asarray(pose_set.quat[ids])
    noisy, scheme, sigma = perturb(clean, samples=S, noise=config, seed=int(settings["seed"]), pose_ids=ids)
    J = clean.shape[1]
    source = np.repeat(ids, S)
    search = index.with_metric(str(settings["metric"]))
    distance, neighbour = search.search(noisy.reshape(-1, J, 4), k, hints=source)
    rows = slice(start * S, stop * S)
    folder = Path(staging)
    values = {
        "noisy": noisy.reshape(-1, J, 4),
        "source": source,
        "scheme": scheme.reshape(-1),
        "sigma": sigma.reshape(-1),
        "distance": distance,
        "neighbour": neighbour,
    }
    for name, value in values.items():
        array = np.load(folder / f"{name}.npy", mmap_mode="r+")
        array[rows] = value
        array.flush()
        del array
    with atomic_open(folder / "done" / f"{start:012d}-{stop:012d}", fsync=False) as fp:
        fp.write(b"")
    return stop


# ---------------------------------------------------------------------------------------------------- the job


def build_training_data(
    config: TrainingDataConfig,
    *,
    overwrite: bool = False,
    wait: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Make (or finish) the training set ``config.out`` (see the module docstring); returns its path.

    Raises:
        StoreError: ``config.poses`` is not a pose set.
        OutputExistsError: ``config.out`` holds something else, or another training set and not ``overwrite``.
        BusyError: another run writes the same output.
    """
    config = dataclasses.replace(config, poses=str(find_pose_set(config.poses)))
    poses = PoseSet(config.poses)
    if len(poses) < config.k:
        raise ConfigError(f"k = {config.k} but the pose set {poses.path} holds {len(poses)} poses", key="k")
    out = Path(config.out)
    experiment = _experiment_id(config, poses)
    if config.noise in ("posendf", "nrdf"):
        levels = len(config.noise_config().levels(config.noise))
        if config.samples_per_pose % levels:  # sample s of a pose takes level s % levels
            logger.warning(
                "%d samples a pose over %d noise levels: the levels are not equally represented (sample "
                "s takes level s %% %d)",
                config.samples_per_pose,
                levels,
                levels,
            )
    with exclusive_lock(out.with_name(f".{out.name}.lock"), what=f"prior data into {out}", wait=wait):
        existing = _read_manifest(out)
        if existing is not None and existing.get("experiment_id") == experiment:
            logger.info("%s is complete already (%s)", out, experiment)
            return out
        _check_target(out, existing, overwrite=overwrite)
        staging = out.with_name(f".{out.name}.partial")
        P, J, S = (
            len(sources(len(poses), config.max_poses)),
            int(poses.quat.shape[1]),
            config.samples_per_pose,
        )
        job = {"experiment_id": experiment, "chunk": config.chunk}
        _check_room(staging, P * S, J, config.k)
        _prepare_staging(staging, job, P * S, J, config.k)
        chunks = [(a, min(a + config.chunk, P)) for a in range(0, P, config.chunk)]
        done = {p.name for p in (staging / "done").iterdir()}
        todo = [c for c in chunks if f"{c[0]:012d}-{c[1]:012d}" not in done]
        if len(todo) < len(chunks):
            logger.info("resuming: %d of %d chunks done", len(chunks) - len(todo), len(chunks))
        settings = config.settings()
        poses_path = str(poses.path)
        _run_chunks(config, poses_path, staging, todo, P, progress)
        manifest = _manifest(config, experiment, settings, poses, P, J)
        shutil.rmtree(staging / "done")
        (staging / "job.json").unlink()
        with atomic_open(staging / "manifest.json") as fp:
            fp.write((json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
        replace_dir(staging, out)
    logger.info("training set %s: %d samples of %d poses", out, P * S, P)
    return out


def _check_target(out: Path, existing: Mapping[str, Any] | None, *, overwrite: bool) -> None:
    """Raises: OutputExistsError: ``out`` holds something that is not an amasskit training set, or another one and
    not ``overwrite``."""
    if out.exists() and existing is None and (out.is_symlink() or not out.is_dir() or any(out.iterdir())):
        raise OutputExistsError(f"{out} exists and is not an amasskit training set: not replaced")
    if existing is not None and not overwrite:
        raise OutputExistsError(
            f"{out} holds another training set ({existing.get('experiment_id')}); pass overwrite to replace it"
        )


def _run_chunks(
    config: TrainingDataConfig,
    poses_path: str,
    staging: Path,
    todo: list[tuple[int, int]],
    P: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """The chunks of sources ``todo`` into ``staging``, here or on the Dask cluster; ``progress(sources done, P)``."""
    settings = config.settings()
    finished = P - sum(b - a for a, b in todo)
    if progress:
        progress(finished, P)

    def advance(stop: int, start: int) -> None:
        nonlocal finished
        finished += stop - start
        if progress:
            progress(finished, P)

    if config.dask:
        from ..._util.cluster import run_on_dask

        calls = [((poses_path, str(staging), a, b, settings, config.device), (a, b)) for a, b in todo]
        run_on_dask(config.dask, run_chunk, calls, lambda tag, stop: advance(stop, tag[0]), what="chunks")
    else:
        for a, b in todo:
            advance(run_chunk(poses_path, str(staging), a, b, settings, config.device), a)


def _manifest(
    config: TrainingDataConfig, experiment: str, settings: Mapping[str, Any], poses: PoseSet, P: int, J: int
) -> dict[str, Any]:
    """What a finished training set records: its id and settings, its pose set (resolved path and identity), its
    arrays' layouts and the metric."""
    S = config.samples_per_pose
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "experiment_id": experiment,
        "config": settings,
        "poses": {
            "path": str(poses.path),
            "experiment_id": poses.experiment_id,
            "count": len(poses),
            "joints": poses.joints,
            "joint_count": J,
        },
        "sources": P,
        "samples": P * S,
        "arrays": {n: _layout(n, P * S, J, config.k) for n in _ARRAYS},
        "metric": {
            "name": config.metric,
            "sum_over_joints": J,
            "definition": METRIC_DEFINITIONS[config.metric],
        },
    }


def _layout(name: str, n: int, J: int, k: int) -> tuple[str, tuple[int, ...]]:
    return {
        "noisy": ("float32", (n, J, 4)),
        "source": ("int64", (n,)),
        "scheme": ("int8", (n,)),
        "sigma": ("float32", (n,)),
        "distance": ("float64", (n, k)),
        "neighbour": ("int64", (n, k)),
    }[name]


def _check_room(staging: Path, n: int, J: int, k: int) -> None:
    """Refuse a training set the disk cannot hold before its (sparse) arrays are made: ``samples_per_pose`` of 1e9
    once made a 336 GB file before failing.

    Raises:
        ConfigError: the arrays need more than the free space where they go (what a resumed job has made counts).
    """
    need = sum(
        np.dtype(dtype).itemsize * int(np.prod(shape))
        for dtype, shape in (_layout(a, n, J, k) for a in _ARRAYS)
    )
    made = sum(f.stat().st_blocks * 512 for f in staging.glob("*.npy")) if staging.is_dir() else 0
    free = shutil.disk_usage(staging.parent).free
    if need - made > free:
        raise ConfigError(
            f"the training set needs {need / 1e9:.3g} GB ({n:,} samples of {J} joints, k = {k}); "
            f"{free / 1e9:.3g} GB are free at {staging.parent}: fewer --samples-per-pose or "
            "--max-poses, or another -o",
            key="samples_per_pose",
        )


def _prepare_staging(staging: Path, job: dict[str, Any], n: int, J: int, k: int) -> None:
    """The staging folder for ``job``: reused when it is this job's (resume), else made afresh."""
    try:
        same = json.loads((staging / "job.json").read_text()) == job
    except (OSError, ValueError):
        same = False
    if same and all((staging / f"{name}.npy").is_file() for name in _ARRAYS):
        return
    if staging.exists():
        logger.info("discarding %s: another job's partial output", staging)
        shutil.rmtree(staging)
    (staging / "done").mkdir(parents=True)
    for name in _ARRAYS:
        dtype, shape = _layout(name, n, J, k)
        np.lib.format.open_memmap(
            staging / f"{name}.npy", mode="w+", dtype=np.dtype(dtype), shape=shape
        ).flush()
    with atomic_open(staging / "job.json") as fp:
        fp.write(json.dumps(job, sort_keys=True).encode())
