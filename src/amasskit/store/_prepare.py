"""``amasskit prepare``: select from the catalog, resample, trim, canonicalise, augment and pack, per split.

Work is done per sequence (a pure function of the file, the config and the seed) on a process pool; each result is
kept in ``<out>/.<split>.prepare/work/`` as soon as it is done, so a run killed at any point resumes where it stopped.
The store is then assembled in catalogue order, so the same config and inputs give byte-identical field and index
files whatever the number of workers (``prepare.log``, with the timings, is the only file that varies).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util.atomic import atomic_open
from .._util.processes import single_threaded_worker, worker_context
from .._version import __version__
from ..catalog import Catalog
from ..errors import AmassFileError, AmassKitError
from ..io import read
from ..ops import add_pose_noise, canonicalise, mirror, resample, rotate_about_vertical, trim
from ..ops._rotations import rotmat_to_6d, rotvec_to_quat, rotvec_to_rotmat
from ..sequence import Sequence
from ._format import StoreWriter

__all__ = ["PrepareConfig", "PrepareReport", "pelvis_offset", "prepare"]

logger = logging.getLogger(__name__)

_ROTATION_FIELDS = ("root_orient", "pose_body", "pose_hand", "pose_jaw", "pose_eye")


@dataclass(frozen=True)
class PrepareConfig:
    """Everything ``prepare`` does, as data (every key is also a CLI flag).

    Attributes:
        catalog: the catalog database (or the scanned folder holding it).
        out: folder for the stores, one per split (``out/<split>``).
        scheme: split scheme recorded in the catalog (``amass-paper``, ...); None: one store, ``out/all``.
        splits: which splits of the scheme (default: all of them).
        datasets, gender, model: selection.
        min_duration: seconds, of the input.
        fps: resample to this rate (by time); None keeps each file's rate.
        trim_keep: keep the middle fraction (0.8 as the AMASS tools); trim_seconds: or cut (start, end) seconds.
        min_frames: drop sequences shorter than this after processing.
        canonicalise: start at the origin facing +Y.
        rotations: augmented copies turned about the vertical by random angles.
        mirror: an augmented mirrored copy of each sequence (and of each rotated copy).
        noise: standard deviation (radians) of pose noise on every augmented copy; 0 for none.
        frame_fraction: frame-sampling mode (pose datasets): keep this seeded random fraction of each sequence's
            frames (from the middle, after trimming) instead of whole sequences.
        rotation: ``rotvec`` (default), ``quat`` (XYZW), ``rotmat`` or ``6d`` for the stored rotations.
        dtype: ``float32`` or ``float64``.
        seed: every random choice derives from it and the file's path.
        workers: processes (default: all cores).
        strict: stop at the first unreadable file instead of skipping it.
        name: an experiment name; default: an id hashed from the config, the inputs and amasskit's version.
        body_models: a body-model folder (layout of :func:`amasskit.body.find_model_file`). With one, the pelvis
            offset used by canonicalisation, rotation and mirroring is the model's rest pelvis for each sequence's
            shape (else it is approximated as zero, and the manifest says so), and a ``joints`` field is stored.
        joints: store ``joints (F, J, 3)``, the model's joint positions for every stored frame (needs
            ``body_models``; default: whenever a body model is configured).
        dask: a Dask scheduler address (``tcp://host:port``): run the per-sequence work on that cluster instead of
            a local pool. Tasks carry file paths, not arrays: every worker reads its inputs from, and writes its
            results to, the same paths, so the catalog root and ``out`` must be on a filesystem the workers share.
            Like ``workers``, it does not change the output.
    """

    catalog: str
    out: str
    scheme: str | None = None
    splits: tuple[str, ...] | None = None
    datasets: tuple[str, ...] | None = None
    gender: str | None = None
    model: str | None = None
    min_duration: float = 0.0
    fps: float | None = None
    trim_keep: float | None = None
    trim_seconds: tuple[float, float] | None = None
    min_frames: int = 1
    canonicalise: bool = False
    rotations: int = 0
    mirror: bool = False
    noise: float = 0.0
    frame_fraction: float | None = None
    rotation: str = "rotvec"
    dtype: str = "float32"
    seed: int = 0
    workers: int | None = None
    strict: bool = False
    name: str | None = None
    body_models: str | None = None
    joints: bool | None = None
    dask: str | None = None

    def __post_init__(self) -> None:
        if self.joints and self.body_models is None:
            raise ValueError("joints need a body model: set body_models (--body-models DIR)")
        if self.rotation not in ("rotvec", "quat", "rotmat", "6d"):
            raise ValueError(f"rotation must be rotvec, quat, rotmat or 6d, got {self.rotation!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.frame_fraction is not None and not 0 < self.frame_fraction <= 1:
            raise ValueError(f"frame_fraction must be in (0, 1], got {self.frame_fraction}")
        if self.rotations < 0 or self.noise < 0:
            raise ValueError("rotations and noise must be >= 0")

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> PrepareConfig:
        """From a parsed YAML/JSON config (lists become tuples; unknown keys are an error)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(known)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def processing(self) -> dict[str, Any]:
        """The keys that change what a sequence becomes (the per-sequence cache is keyed on them)."""
        keep = ("fps", "trim_keep", "trim_seconds", "min_frames", "canonicalise", "rotations", "mirror", "noise",
                "frame_fraction", "rotation", "dtype", "seed", "body_models")  # fmt: skip
        return {k: getattr(self, k) for k in keep} | {"joints": self.stores_joints}

    @property
    def stores_joints(self) -> bool:
        """Whether the stores get a ``joints`` field."""
        return self.body_models is not None and self.joints is not False


@dataclass(frozen=True)
class PrepareReport:
    """What ``prepare`` made: per split, the store path and counts; problems; the experiment id."""

    experiment_id: str
    stores: dict[str, Path]
    sequences: dict[str, int]
    frames: dict[str, int]
    problems: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------- per sequence


def _rng(seed: int, rel: str) -> np.random.Generator:
    digest = hashlib.sha256(rel.encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _rotations(value: np.ndarray, representation: str) -> np.ndarray:
    """Axis-angle ``(..., 3)`` in the stored representation (numpy: workers need not import torch)."""
    if representation == "rotvec":
        return value
    if representation == "quat":
        q = rotvec_to_quat(value)
        return np.where(q[..., 3:] < 0, -q, q)
    R = rotvec_to_rotmat(value)
    return R if representation == "rotmat" else rotmat_to_6d(R)


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
        shaped = model.with_shape(seq.betas[: model.num_betas], dmpls=seq.dmpls if use_dmpls else None)
        return shaped.joints_rest[..., 0, :].numpy().astype(np.float64)


def _fields(seq: Sequence, config: PrepareConfig, model: Any = None) -> dict[str, np.ndarray]:
    dtype = np.dtype(config.dtype)
    out: dict[str, np.ndarray] = {}
    for name in _ROTATION_FIELDS:
        value = getattr(seq, name)
        if value is not None:
            out[name] = _rotations(value, config.rotation).astype(dtype)
    out["trans"] = seq.trans.astype(dtype)
    if seq.dmpls is not None:
        out["dmpls"] = seq.dmpls.astype(dtype)
    if model is not None:
        import torch

        with torch.inference_mode():
            out["joints"] = model.sequence_joints(seq).numpy().astype(dtype)
    return out


def process_sequence(
    root: str, rel: str, config: PrepareConfig
) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    """Everything ``prepare`` stores for one file: the processed sequence and its augmented copies.

    Returns:
        ``(fields, meta)`` per output sequence (none when the sequence is too short after processing).
    """
    seq = read(os.path.join(root, rel), dtype=np.float64)
    if config.fps is not None:
        seq = resample(seq, config.fps)
    if config.trim_keep is not None or config.trim_seconds is not None:
        try:
            seq = trim(seq, keep=config.trim_keep, seconds=config.trim_seconds)
        except ValueError:
            return []
    model = None if config.body_models is None else _body_model(config.body_models, seq)
    pelvis = None if model is None else pelvis_offset(model, seq)
    if config.canonicalise:
        seq = canonicalise(seq, pelvis_offset=pelvis)
    rng = _rng(config.seed, rel)
    if config.frame_fraction is not None:
        count = max(1, math.floor(seq.num_frames * config.frame_fraction))
        picked = np.sort(rng.choice(seq.num_frames, size=count, replace=False))
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
        out.append((_fields(variant, config, joints_model), meta | {"fps": variant.fps, "gender": variant.gender.value,
                                                      "betas": variant.betas.astype(np.float32).tolist()}))  # fmt: skip
    return out


def _work_one(root: str, rel: str, config: PrepareConfig, work: str, index: int) -> tuple[int, str | None]:
    """Process one file into ``work/<index>.npz`` (atomically); returns (index, error or None)."""
    target = Path(work) / f"{index:07d}.npz"
    try:
        results = process_sequence(root, rel, config)
    except AmassFileError as exc:
        return index, f"{type(exc).__name__}: {exc}"
    arrays: dict[str, np.ndarray] = {}
    metas = []
    for k, (fields, meta) in enumerate(results):
        for name, value in fields.items():
            arrays[f"{k}/{name}"] = value
        metas.append(meta)
    arrays["meta"] = np.array(json.dumps(metas, sort_keys=True))
    with atomic_open(target, fsync=False) as fp:
        np.savez(fp, **arrays)  # type: ignore[arg-type]
    return index, None


def _load_work(path: Path) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    with np.load(path, allow_pickle=False) as data:
        metas = json.loads(str(data["meta"]))
        out = []
        for k, meta in enumerate(metas):
            prefix = f"{k}/"
            fields = {key[len(prefix) :]: data[key] for key in data.files if key.startswith(prefix)}
            out.append((fields, meta))
    return out


# ---------------------------------------------------------------------------------------------- the run


def prepare(
    config: PrepareConfig, *, progress: Callable[[str, int, int], None] | None = None
) -> PrepareReport:
    """Run the prepare pipeline (see the module docstring).

    Raises:
        CatalogError: no catalog, or the scheme is not recorded in it.
        AmassKitError: the first unreadable file, with ``strict``.
    """
    start = time.perf_counter()
    out = Path(config.out).resolve()  # absolute: workers (local or on a cluster) use these paths
    out.mkdir(parents=True, exist_ok=True)
    with Catalog.open(config.catalog) as cat:
        root = str(Path(cat.root).resolve())
        query: dict[str, Any] = {"dataset": list(config.datasets) if config.datasets else None,
                                 "gender": config.gender, "model": config.model,
                                 "min_duration": config.min_duration or None}  # fmt: skip
        if config.scheme is None:
            selections = {"all": cat.records(**query)}
        else:
            names = config.splits or tuple(cat.split_counts(config.scheme))
            selections = {s: cat.records(split=s, scheme=config.scheme, **query) for s in names}
    inputs = sorted((r.path, r.content_hash) for recs in selections.values() for r in recs)
    config_json = json.dumps(dataclasses.asdict(config) | {"workers": None, "out": None, "catalog": None, "dask": None},
                             sort_keys=True, default=list)  # fmt: skip
    experiment = (
        config.name
        or hashlib.sha1((config_json + json.dumps(inputs) + __version__).encode()).hexdigest()[:12]
    )
    processing_key = json.dumps(config.processing(), sort_keys=True, default=list)
    report_problems: list[tuple[str, str]] = []
    stores: dict[str, Path] = {}
    seq_counts: dict[str, int] = {}
    frame_counts: dict[str, int] = {}
    workers = max(1, config.workers or os.cpu_count() or 1)
    if config.body_models is not None:  # every model the selection needs, found before any work starts
        from ..body import find_model_file

        for kind, gender in sorted({(r.model, r.gender) for recs in selections.values() for r in recs}):
            find_model_file(kind, gender, config.body_models)
    # 1. work out what is left to do in every split (finished splits and finished sequences are skipped)
    plans: dict[str, tuple[Path, list[str]]] = {}
    jobs: list[tuple[str, int, str]] = []
    for split, records in selections.items():
        target = out / split
        if _finished(target, experiment, json.loads(config_json)):  # resumed: this split is complete already
            store_manifest = json.loads((target / "manifest.json").read_text())
            stores[split] = target
            seq_counts[split] = int(store_manifest["sequences"])
            frame_counts[split] = int(store_manifest["frames"])
            report_problems.extend((p["path"], p["error"]) for p in store_manifest["problems"])
            continue
        staging = out / f".{split}.prepare"
        key_file = staging / "processing.json"
        if key_file.exists() and key_file.read_text() != processing_key:
            shutil.rmtree(staging)  # results of another configuration: start over
        (staging / "work").mkdir(parents=True, exist_ok=True)
        key_file.write_text(processing_key)
        paths = [r.path for r in records]
        plans[split] = (staging, paths)
        jobs += [
            (split, i, p) for i, p in enumerate(paths) if not (staging / "work" / f"{i:07d}.npz").exists()
        ]

    # 2. one pool for every split's remaining sequences
    errors: dict[tuple[str, int], str] = {}
    total = sum(len(paths) for _, paths in plans.values())
    done = total - len(jobs)

    def finished_one(split: str, index: int, error: str | None) -> None:
        nonlocal done
        done += 1
        if error is not None:
            errors[(split, index)] = error
            if config.strict:
                raise AmassKitError(f"prepare stopped (--strict): {error}")
        if progress is not None:
            progress("all", done, total)

    calls = [((root, path, config, str(plans[split][0] / "work"), i), (split, i)) for split, i, path in jobs]
    context = worker_context()
    # A spawned worker re-imports numpy, torch and roma (seconds): with an automatic worker count the pool is used
    # only for enough work; an explicit count is always honoured.
    enough = 2 * workers if context.get_start_method() == "fork" else 16 * workers
    if config.dask is not None and calls:
        _run_on_dask(config.dask, calls, finished_one)
    elif workers > 1 and len(jobs) > 1 and (config.workers is not None or len(jobs) >= enough):
        with ProcessPoolExecutor(workers, mp_context=context, initializer=single_threaded_worker) as pool:
            futures = {pool.submit(_work_one, *args): tag for args, tag in calls}
            try:
                for future in as_completed(futures):
                    _index, error = future.result()
                    finished_one(*futures[future], error)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    else:
        for args, (split, i) in calls:
            _index, error = _work_one(*args)
            finished_one(split, i, error)

    work_seconds = time.perf_counter() - start
    # 3. assemble each split in catalogue order: the same bytes whatever the order work finished in
    for split, (staging, paths) in plans.items():
        assembling = time.perf_counter()
        target = out / split
        problems = [(paths[i], errors[(s, i)]) for s, i in sorted(errors) if s == split]
        report_problems.extend(problems)
        writer = StoreWriter(target, overwrite=True)
        try:
            for i in range(len(paths)):
                work_file = staging / "work" / f"{i:07d}.npz"
                if not work_file.exists():
                    continue
                for fields, meta in _load_work(work_file):
                    writer.add(fields, fps=meta.pop("fps"), betas=np.asarray(meta.pop("betas"), np.float32),
                               gender=meta.pop("gender"), meta=meta)  # fmt: skip
            manifest = {
                "experiment_id": experiment,
                "split": split,
                "config": json.loads(config_json),
                "inputs": len(paths),
                "problems": [{"path": p, "error": e} for p, e in problems],
                "versions": _versions(),
                "rotation": config.rotation,
                "pelvis_offset": (
                    "approximated as zero (no body model configured)"
                    if config.body_models is None
                    else "the body model's rest pelvis (joint 0) for each sequence's betas"
                ),
            }
            # the run's log holds what varies between runs (timings, workers), so the manifest, index and fields
            # stay byte-identical for the same config and inputs
            log = (
                f"prepare {experiment} split {split}: {len(paths)} inputs, {len(problems)} problems\n"
                f"finished {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; workers {workers}"
                f"{'; dask ' + config.dask if config.dask else ''}\n"
                f"timings: select + per-sequence work (all splits) {work_seconds:.2f} s, "
                f"assembling this split {time.perf_counter() - assembling:.2f} s\n"
                + "".join(f"problem: {p}: {e}\n" for p, e in problems)
            )
            (writer.staging / "prepare.log").write_text(log)
            writer.close(manifest)
        except BaseException:
            writer.abort()
            raise
        shutil.rmtree(staging)
        store_manifest = json.loads((target / "manifest.json").read_text())
        stores[split] = target
        seq_counts[split] = int(store_manifest["sequences"])
        frame_counts[split] = int(store_manifest["frames"])
        logger.info("%s: %d sequences, %d frames", target, seq_counts[split], frame_counts[split])
    stores = {s: stores[s] for s in selections if s in stores}
    return PrepareReport(
        experiment, stores, seq_counts, frame_counts, report_problems, time.perf_counter() - start
    )


def _run_on_dask(
    address: str,
    calls: list[tuple[tuple[Any, ...], tuple[str, int]]],
    finished_one: Callable[[str, int, str | None], None],
) -> None:
    """Run ``_work_one`` for every call on the Dask cluster at ``address``; results stay on the shared filesystem
    (only an index and an error message come back through the scheduler)."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise ImportError(
            "running on a Dask cluster needs dask.distributed: pip install 'amasskit[dask]'"
        ) from None
    with Client(address) as client:
        logger.info("prepare: %d sequences on the Dask cluster at %s", len(calls), address)
        futures = {client.submit(_work_one, *args, pure=False): tag for args, tag in calls}
        try:
            for future in dask_completed(list(futures)):
                _index, error = future.result()
                finished_one(*futures[future], error)
        except BaseException:
            client.cancel(list(futures))
            raise


def _finished(target: Path, experiment: str, config: dict[str, Any]) -> bool:
    """The store at ``target`` was made by this experiment with this config (a name alone is not enough)."""
    try:
        manifest = json.loads((target / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(manifest.get("experiment_id") == experiment and manifest.get("config") == config)


def _versions() -> dict[str, str]:
    import numpy

    return {"amasskit": __version__, "numpy": numpy.__version__}
