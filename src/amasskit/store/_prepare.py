"""``amasskit prepare``: select from the catalog, resample, trim, canonicalise, augment and pack, per split.

Work is done per sequence (a pure function of the file, the config and the seed) on a process pool; each result is
kept in ``<out>/.amasskit-prepare/work/<key>.npz`` as soon as it is done, where the key hashes what the result depends
on: the file's path, its content identity (the catalog's content hash, its size and modification time now) and the
settings that change what a sequence becomes. A run killed at any point resumes from the results it finished, and
only from results of the same inputs under the same settings: after the selection, the files or the settings changed,
a rerun gives exactly the store an uninterrupted run of the new config gives (stale results are deleted, and logged).
The store is then assembled in catalogue order, so the same config and inputs give byte-identical field and index
files whatever the number of workers (``prepare.log``, with the timings, is the only file that varies).

Safety: one run at a time per ``out`` (a lock the operating system releases when a run dies, however it dies);
everything is checked before any work starts (every config value, the scheme and splits, the selection, a mix of
SMPL+H and SMPL-X files, what is at each split's path); amasskit never replaces a folder it did not write, and a store
of another experiment only with ``overwrite``; a finished store is swapped in atomically (readers see the old store or
the new one, whole); files that cannot be prepared (unreadable, absurd frame rates, fields of the wrong width, values
that overflow the stored dtype) are skipped and listed, or stop the run with ``strict``.
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
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._util.atomic import atomic_open
from .._util.configfile import load_yaml_or_json
from .._util.locking import exclusive_lock
from .._util.processes import pool_worker, worker_context
from .._version import __version__
from ..catalog import Catalog
from ..conventions import POSE_PARTS
from ..errors import (
    AmassKitError,
    ArrayShapeError,
    ConfigError,
    EmptySelectionError,
    InvalidValueError,
    NonFiniteError,
    OutputExistsError,
)
from ..io import read
from ..ops import add_pose_noise, canonicalise, mirror, resample, rotate_about_vertical, trim
from ..rotations import convert, quat_canonical, rotvec_to_quat
from ..sequence import Sequence
from ._format import StoreWriter, read_manifest, target_state

__all__ = [
    "PrepareConfig",
    "PreparePlan",
    "PrepareReport",
    "SplitPlan",
    "load_config_file",
    "pelvis_offset",
    "plan_prepare",
    "prepare",
]

logger = logging.getLogger(__name__)

# Frame rates prepare accepts from a file: real captures run from 30 to a few hundred fps; a rate far outside would
# resample a short file into millions of frames (or one), so it is named as a problem instead.
FPS_RANGE = (1.0, 2000.0)
_STAGING = ".amasskit-prepare"  # out/.amasskit-prepare/work/<key>.npz: per-sequence results of the run
_LOCK = (
    ".amasskit-prepare.lock"  # out/.amasskit-prepare.lock: one run per out (never deleted, see _util.locking)
)


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML (``.yaml``/``.yml``) or JSON file.

    Raises:
        ConfigError: no such file, unreadable, not valid YAML/JSON, or not a mapping.
    """
    file = Path(path)
    if not file.exists():
        raise ConfigError(f"{file}: no such config file")
    data = load_yaml_or_json(file, ConfigError)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: a config is a mapping of keys to values, got {type(data).__name__}")
    return data


_CHOICES: dict[str, tuple[str, ...]] = {
    "gender": ("male", "female", "neutral"),
    "model": ("smplh", "smplx"),
    "rotation": ("rotvec", "quat", "rotmat", "6d"),
    "dtype": ("float32", "float64"),
}


def _number(key: str, value: Any, *, integer: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{key} must be {kind}, got {value!r} ({type(value).__name__})", key=key)
    if integer:
        if isinstance(value, (float, np.floating)) and not float(value).is_integer():
            raise ConfigError(f"{key} must be an integer, got {value!r}", key=key)
        return int(value)
    if not math.isfinite(float(value)):
        raise ConfigError(f"{key} must be finite, got {value!r}", key=key)
    return float(value)


def _checked(key: str, value: Any) -> Any:
    """``value`` for the config key ``key``, type- and range-checked and normalised.

    Raises:
        ConfigError: naming the key, what came and what is allowed.
    """
    if value is None and key not in ("catalog", "out"):
        return None
    if key in ("catalog", "out", "scheme", "name", "body_models", "dask"):
        if isinstance(value, os.PathLike) and key in ("catalog", "out", "body_models"):
            return os.fspath(value)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key} must be a non-empty string, got {value!r}", key=key)
        return value
    if key in ("splits", "datasets"):
        if isinstance(value, str):
            raise ConfigError(
                f"{key} must be a list of names, got the string {value!r} (write [{value}], or repeat the flag)",
                key=key,
            )
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{key} must be a list of names, got {value!r}", key=key)
        if not value:
            raise ConfigError(f"{key} is empty: leave it out to take every one", key=key)
        return tuple(value)
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            allowed = _CHOICES[key]
            raise ConfigError(
                f"{key} must be {', '.join(allowed[:-1])} or {allowed[-1]}, got {value!r}", key=key
            )
        return value
    if key in ("canonicalise", "mirror", "strict", "joints"):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}", key=key)
        return value
    if key == "trim_seconds":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConfigError(f"trim_seconds must be [start, end] seconds to cut, got {value!r}", key=key)
        pair = (_number(key, value[0]), _number(key, value[1]))
        if min(pair) < 0:
            raise ConfigError(f"trim_seconds must be >= 0, got {value!r}", key=key)
        return pair
    ranges: dict[str, tuple[float, float, bool, bool]] = {  # low, high, low included, integer
        "min_duration": (0.0, math.inf, True, False),
        "fps": (0.0, FPS_RANGE[1], False, False),
        "trim_keep": (0.0, 1.0, False, False),
        "frame_fraction": (0.0, 1.0, False, False),
        "noise": (0.0, math.pi, True, False),
        "min_frames": (1, math.inf, True, True),
        "rotations": (0, 1000, True, True),
        "seed": (0, 2**63 - 1, True, True),
        "workers": (1, 4096, True, True),
    }
    if key in ranges:
        low, high, closed, integer = ranges[key]
        number = _number(key, value, integer=integer)
        if number < low or (number == low and not closed) or number > high:
            interval = f"{'[' if closed else '('}{low:g}, {high:g}]"
            raise ConfigError(f"{key} must be in {interval}, got {value!r}", key=key)
        return number
    raise ConfigError(f"unknown config key {key!r}", key=key)  # pragma: no cover - fields are all listed


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
        for spec in dataclasses.fields(self):
            value = _checked(spec.name, getattr(self, spec.name))
            object.__setattr__(self, spec.name, value)  # normalised: paths as str, numbers as float, ...
        if self.joints and self.body_models is None:
            raise ConfigError("joints need a body model: set body_models (--body-models DIR)", key="joints")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PrepareConfig:
        """From a parsed YAML/JSON config (lists become tuples; unknown keys are an error).

        Raises:
            ConfigError: an unknown or missing key, or a value of the wrong type or outside its range.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"a prepare config is a mapping of keys to values, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config keys {sorted(unknown)}; known: {sorted(known)}",
                              key=str(sorted(unknown)[0]))  # fmt: skip
        missing = [k for k in ("catalog", "out") if data.get(k) is None]
        if missing:
            raise ConfigError(f"the config needs {' and '.join(missing)} (or --{' and --'.join(missing)})",
                              key=missing[0])  # fmt: skip
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> PrepareConfig:
        """Read a YAML (``.yaml``/``.yml``) or JSON config; ``overrides`` (not None) replace its keys.

        Raises:
            ConfigError: no such file, a file that does not parse, or a bad key or value (named).
        """
        data = dict(load_config_file(path))
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(data)

    def processing(self) -> dict[str, Any]:
        """The keys that change what a sequence becomes (the per-sequence cache is keyed on them)."""
        keep = ("fps", "trim_keep", "trim_seconds", "min_frames", "canonicalise", "rotations", "mirror", "noise",
                "frame_fraction", "rotation", "dtype", "seed", "body_models")  # fmt: skip
        return {k: getattr(self, k) for k in keep} | {"joints": self.stores_joints}

    @property
    def stores_joints(self) -> bool:
        """Whether the stores get a ``joints`` field."""
        return self.body_models is not None and self.joints is not False


# ---------------------------------------------------------------------------------------------- per sequence


def _rng(seed: int, rel: str) -> np.random.Generator:
    digest = hashlib.sha256(rel.encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _rotations(value: np.ndarray, representation: str) -> np.ndarray:
    """Axis-angle ``(..., 3)`` in the stored representation (numpy: workers need not import torch)."""
    if representation == "quat":  # w >= 0 also for the angles above pi that some AMASS files hold
        return quat_canonical(rotvec_to_quat(value))
    return convert(value, source="rotvec", target=representation)


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


def _fields(path: str, seq: Sequence, config: PrepareConfig, model: Any = None) -> dict[str, np.ndarray]:
    dtype = np.dtype(config.dtype)
    out: dict[str, np.ndarray] = {}
    for name in POSE_PARTS:
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
        out.append((_fields(path, variant, config, joints_model), meta | {"fps": variant.fps,
                    "gender": variant.gender.value, "betas": variant.betas.astype(np.float32).tolist()}))  # fmt: skip
    return out


def _schema(fields: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
    """What the store needs every sequence to agree on: field names, dtypes and per-frame shapes."""
    return {name: [str(value.dtype), list(value.shape[1:])] for name, value in sorted(fields.items())}


def _work_one(root: str, rel: str, config: PrepareConfig, work: str, key: str) -> tuple[str, str | None]:
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


def _load_work(path: Path) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    with np.load(path, allow_pickle=False) as data:
        metas = json.loads(str(data["meta"]))
        out = []
        for k, meta in enumerate(metas):
            prefix = f"{k}/"
            fields = {key[len(prefix) :]: data[key] for key in data.files if key.startswith(prefix)}
            out.append((fields, meta))
    return out


def _load_summary(path: Path) -> tuple[dict[str, list[Any]] | None, int]:
    """A result's field layout (None when it holds no sequence) and its number of sequences, without its arrays."""
    with np.load(path, allow_pickle=False) as data:
        schema = json.loads(str(data["schema"]))
        count = len(json.loads(str(data["meta"])))
    return (schema if isinstance(schema, dict) else None), count


# ---------------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class SplitPlan:
    """What ``prepare`` will do for one split.

    Attributes:
        split: its name. target: ``out/<split>``.
        action: ``create`` (nothing there), ``replace`` (a store of another experiment, with ``overwrite``) or
            ``keep`` (the store there was made by this experiment already: nothing to do).
        inputs: the selected files, relative to the catalog root, in catalogue order.
        keys: each input's work key (what its result depends on).
        done: inputs whose result an earlier, interrupted run left (reused).
    """

    split: str
    target: Path
    action: Literal["create", "replace", "keep"]
    inputs: tuple[str, ...]
    keys: tuple[str, ...]
    done: int


@dataclass(frozen=True)
class PreparePlan:
    """What ``prepare`` will do, found before any work starts (``prepare --dry-run`` prints it).

    Attributes:
        experiment_id: the id every store of the run records.
        root: the catalog root. out: the output folder. model: ``smplh`` or ``smplx``.
        splits: per split, its :class:`SplitPlan` (splits the scheme has but the selection leaves empty are
            left out, and named in ``empty``).
        stale: results of earlier runs that no longer match (changed selection, files or settings): deleted.
    """

    experiment_id: str
    root: Path
    out: Path
    model: str
    splits: dict[str, SplitPlan]
    empty: tuple[str, ...]
    stale: int
    config_json: str = field(repr=False, default="")

    @property
    def to_process(self) -> int:
        """Files left to process (each file once, whatever the number of splits it is in)."""
        pending: set[str] = set()
        for plan in self.splits.values():
            if plan.action != "keep":
                pending.update(plan.keys)
        return len(pending - set(_existing_work(self.out)))


def _work_dir(out: Path) -> Path:
    return out / _STAGING / "work"


def _existing_work(out: Path) -> list[str]:
    folder = _work_dir(out)
    return [p.stem for p in folder.glob("*.npz")] if folder.is_dir() else []


def _identity(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _work_key(rel: str, content_hash: str, identity: list[int] | None, processing_key: str) -> str:
    """What a per-sequence result depends on: the file (path, content, identity now), the settings, amasskit."""
    text = json.dumps([rel, content_hash, identity, processing_key, __version__])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def plan_prepare(config: PrepareConfig, *, overwrite: bool = False) -> PreparePlan:
    """Check ``config`` against its catalog and the output folder, and say what ``prepare`` would do.

    Raises:
        CatalogError: no catalog at ``config.catalog``.
        ConfigError: a scheme not recorded in the catalog, a split the scheme does not have, a sub-dataset the
            catalog does not hold, a selection mixing SMPL+H and SMPL-X files.
        EmptySelectionError: the selection (or a split asked for by name) holds no file.
        OutputExistsError: a split's path holds a folder amasskit did not write, or a store of another experiment
            without ``overwrite``.
        BodyModelNotFoundError: a body model the selection needs is missing.
    """
    out = Path(config.out).resolve()  # absolute: workers (local or on a cluster) use these paths
    with Catalog.open(config.catalog) as cat:
        root = Path(cat.root).resolve()
        if config.datasets:
            for name in config.datasets:
                if not cat.records(dataset=name):
                    known = sorted({r.dataset for r in cat.records()})
                    raise ConfigError(f"datasets: the catalog holds no sub-dataset {name!r}; it holds {known}",
                                      key="datasets")  # fmt: skip
        query: dict[str, Any] = {"dataset": list(config.datasets) if config.datasets else None,
                                 "gender": config.gender, "model": config.model,
                                 "min_duration": config.min_duration or None}  # fmt: skip
        if config.scheme is None:
            if config.splits:
                raise ConfigError("splits need a scheme (scheme: NAME, or --scheme)", key="splits")
            selections = {"all": cat.records(**query)}
        else:
            if config.scheme not in cat.schemes():
                raise ConfigError(
                    f"scheme {config.scheme!r} is not recorded in the catalog {cat.path}; recorded: "
                    f"{cat.schemes() or 'none'} (record one with `amasskit split {config.scheme} --db ...`)",
                    key="scheme",
                )
            available = tuple(cat.split_counts(config.scheme))
            unknown = [s for s in config.splits or () if s not in available]
            if unknown:
                raise ConfigError(f"splits {unknown} are not in scheme {config.scheme!r}, whose splits with files "
                                  f"are {list(available)}", key="splits")  # fmt: skip
            names = config.splits or available
            selections = {s: cat.records(split=s, scheme=config.scheme, **query) for s in names}
    if not any(selections.values()):
        raise EmptySelectionError(
            f"the selection holds no sequence (scheme {config.scheme}, splits {list(selections)}, datasets "
            f"{list(config.datasets or []) or 'all'}, gender {config.gender or 'any'}, model {config.model or 'any'}, "
            f"min_duration {config.min_duration:g} s): nothing to prepare",
            key="selection",
        )
    empty = tuple(s for s, recs in selections.items() if not recs)
    if config.splits:
        asked = [s for s in empty if s in config.splits]
        if asked:
            raise EmptySelectionError(f"split {asked[0]!r} holds no file of the selection", key="splits")
    models: dict[str, int] = {}
    for recs in selections.values():
        for r in recs:
            models[r.model] = models.get(r.model, 0) + 1
    if len(models) > 1:
        counts = ", ".join(f"{n} {m}" for m, n in sorted(models.items()))
        raise ConfigError(
            f"the selection mixes SMPL+H and SMPL-X files ({counts}), which have different fields and cannot "
            "share a store: choose one with model: smplh|smplx (--model), and prepare the other into another out",
            key="model",
        )
    if config.body_models is not None:  # every model the selection needs, found before any work starts
        from ..body import find_model_file

        for kind, gender in sorted({(r.model, r.gender) for recs in selections.values() for r in recs}):
            find_model_file(kind, gender, config.body_models)
    inputs = sorted((r.path, r.content_hash) for recs in selections.values() for r in recs)
    config_json = json.dumps(dataclasses.asdict(config) | {"workers": None, "out": None, "catalog": None, "dask": None},
                             sort_keys=True, default=list)  # fmt: skip
    experiment = (
        config.name
        or hashlib.sha1((config_json + json.dumps(inputs) + __version__).encode()).hexdigest()[:12]
    )
    processing_key = json.dumps(config.processing(), sort_keys=True, default=list)
    existing = set(_existing_work(out))
    plans: dict[str, SplitPlan] = {}
    for split, records in selections.items():
        if not records:
            continue
        target = out / split
        state = target_state(target)
        action: Literal["create", "replace", "keep"] = "create"
        if state == "foreign":
            raise OutputExistsError(
                f"{target} exists and is not an amasskit store: prepare never replaces what amasskit did not "
                "write; move it away or choose another out"
            )
        if state == "store":
            if _finished(target, experiment, json.loads(config_json)):
                action = "keep"
            elif not overwrite:
                manifest = read_manifest(target) or {}
                raise OutputExistsError(
                    f"{target} holds a store of another experiment ({manifest.get('experiment_id')!r}, this one is "
                    f"{experiment!r}); pass overwrite (--overwrite) to replace it, or choose another out"
                )
            else:
                action = "replace"
        keys = tuple(
            _work_key(r.path, r.content_hash, _identity(root / r.path), processing_key) for r in records
        )
        done = sum(k in existing for k in keys) if action != "keep" else len(keys)
        plans[split] = SplitPlan(split, target, action, tuple(r.path for r in records), keys, done)
    needed = {k for p in plans.values() if p.action != "keep" for k in p.keys}
    return PreparePlan(experiment, root, out, next(iter(models)), plans, empty, len(existing - needed),
                       config_json)  # fmt: skip


# ---------------------------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class PrepareReport:
    """What ``prepare`` made: per split, the store path and counts; problems; the experiment id.

    Attributes:
        empty: splits that got no store because no selected file gave a sequence (every one failed or was too
            short), or the selection left them empty.
        discarded: results of earlier runs deleted as stale.
    """

    experiment_id: str
    stores: dict[str, Path]
    sequences: dict[str, int]
    frames: dict[str, int]
    problems: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    empty: list[str] = field(default_factory=list)
    discarded: int = 0


def _clean_leftovers(out: Path, plan: PreparePlan) -> None:
    """What a killed run left: stale results, half-written results, half-written stores, old staging."""
    work = _work_dir(out)
    needed = {k for p in plan.splits.values() if p.action != "keep" for k in p.keys}
    stale = [p for p in work.glob("*.npz") if p.stem not in needed] if work.is_dir() else []
    for path in stale:
        path.unlink()
    if stale:
        logger.info("prepare: discarded %d results of an earlier run that no longer match the selection, the "
                    "files or the settings", len(stale))  # fmt: skip
    if work.is_dir():
        for tmp in work.glob(".*.tmp*"):  # atomic writes a killed worker did not finish
            tmp.unlink()
    for split in plan.splits:
        for name in (f".{split}.partial", f".{split}.old", f".{split}.prepare"):  # .prepare: before 0.1.1
            leftover = out / name
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
                logger.info("prepare: removed %s, left by a killed run", leftover)


def prepare(
    config: PrepareConfig,
    *,
    overwrite: bool = False,
    wait: float = 0.0,
    progress: Callable[[str, int, int], None] | None = None,
) -> PrepareReport:
    """Run the prepare pipeline (see the module docstring).

    Args:
        config: what to prepare.
        overwrite: replace stores of other experiments at the splits' paths (never a folder amasskit did not write).
        wait: seconds to wait for another run into the same ``out`` to finish (0: refuse at once).
        progress: called as ``progress("all", done, total)``.

    Raises:
        BusyError: another run is preparing into the same ``out``.
        CatalogError, ConfigError, EmptySelectionError, OutputExistsError: see :func:`plan_prepare`; raised before
            any work starts.
        AmassKitError: the first file that cannot be prepared, with ``strict``.
    """
    start = time.perf_counter()
    out = Path(config.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out / _LOCK, what=f"prepare into {out}", wait=wait):
        plan = plan_prepare(config, overwrite=overwrite)
        _clean_leftovers(out, plan)
        return _run(config, plan, start, progress)


def _run(
    config: PrepareConfig, plan: PreparePlan, start: float, progress: Callable[[str, int, int], None] | None
) -> PrepareReport:
    out, root = plan.out, str(plan.root)
    work = _work_dir(out)
    work.mkdir(parents=True, exist_ok=True)
    workers = max(1, config.workers or os.cpu_count() or 1)
    # 1. every split's remaining files, each once
    jobs: dict[str, str] = {}  # key -> relative path
    for split_plan in plan.splits.values():
        if split_plan.action == "keep":
            continue
        for rel, key in zip(split_plan.inputs, split_plan.keys, strict=True):
            if not (work / f"{key}.npz").exists():
                jobs.setdefault(key, rel)
    total = len({k for p in plan.splits.values() if p.action != "keep" for k in p.keys})
    done = total - len(jobs)
    errors: dict[str, str] = {}

    def finished_one(key: str, error: str | None) -> None:
        nonlocal done
        done += 1
        if error is not None:
            errors[key] = error
            if config.strict:
                raise AmassKitError(f"prepare stopped (--strict): {error}")
        if progress is not None:
            progress("all", done, total)

    # 2. one pool for every split's remaining sequences
    calls = [((root, rel, config, str(work), key), key) for key, rel in jobs.items()]
    context = worker_context()
    # A spawned worker re-imports numpy, torch and roma (seconds): with an automatic worker count the pool is used
    # only for enough work; an explicit count is always honoured.
    enough = 2 * workers if context.get_start_method() == "fork" else 16 * workers
    if config.dask is not None and calls:
        _run_on_dask(config.dask, calls, finished_one)
    elif workers > 1 and len(jobs) > 1 and (config.workers is not None or len(jobs) >= enough):
        with ProcessPoolExecutor(workers, mp_context=context, initializer=pool_worker) as pool:
            futures = {pool.submit(_work_one, *args): tag for args, tag in calls}
            try:
                for future in as_completed(futures):
                    _key, error = future.result()
                    finished_one(futures[future], error)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    else:
        for args, key in calls:
            _key, error = _work_one(*args)
            finished_one(key, error)
    work_seconds = time.perf_counter() - start

    # 3. every result must fit one store layout: the layout most files give (ties: the first in catalogue order);
    # a file that gives another (a field of another width, a field missing) is a problem, found before assembly
    schemas: dict[str, str] = {}
    outputs: dict[str, int] = {}  # sequences in each readable result
    rel_of: dict[str, str] = {}
    for split_plan in plan.splits.values():
        if split_plan.action == "keep":
            continue
        for rel, key in zip(split_plan.inputs, split_plan.keys, strict=True):
            rel_of[key] = rel
            if key in errors or key in outputs or not (work / f"{key}.npz").exists():
                continue
            try:
                schema, outputs[key] = _load_summary(work / f"{key}.npz")
            except (OSError, ValueError, KeyError) as exc:
                (work / f"{key}.npz").unlink(missing_ok=True)
                errors[key] = (
                    f"StoreError: {plan.root / rel}: its prepared result is unreadable ({exc}); run again"
                )
                continue
            if schema is not None:
                schemas[key] = json.dumps(schema, sort_keys=True)
    if schemas:
        tally: dict[str, int] = {}
        for key in schemas:  # catalogue order
            tally[schemas[key]] = tally.get(schemas[key], 0) + 1
        expected = max(tally, key=lambda s: tally[s])  # dicts keep insertion order: ties go to the first seen
        layout = ", ".join(
            f"{n} {tuple(shape)} {dtype}" for n, (dtype, shape) in json.loads(expected).items()
        )
        for key in schemas:
            if schemas[key] != expected:
                got = ", ".join(f"{n} {tuple(sh)} {dt}" for n, (dt, sh) in json.loads(schemas[key]).items())
                errors[key] = (f"ArrayShapeError: {plan.root / rel_of[key]}: its fields "
                               f"({got}) differ from the other sequences' ({layout})")  # fmt: skip
                if config.strict:
                    raise AmassKitError(f"prepare stopped (--strict): {errors[key]}")

    # 4. assemble each split in catalogue order: the same bytes whatever the order work finished in
    stores: dict[str, Path] = {}
    seq_counts: dict[str, int] = {}
    frame_counts: dict[str, int] = {}
    report_problems: list[tuple[str, str]] = []
    empty = list(plan.empty)
    for split, split_plan in plan.splits.items():
        target = split_plan.target
        if split_plan.action == "keep":  # resumed: this split is complete already
            store_manifest = read_manifest(target) or {}
            stores[split] = target
            seq_counts[split] = int(store_manifest["sequences"])
            frame_counts[split] = int(store_manifest["frames"])
            report_problems.extend((p["path"], p["error"]) for p in store_manifest["problems"])
            continue
        assembling = time.perf_counter()
        problems = [(rel, errors[key]) for rel, key in zip(split_plan.inputs, split_plan.keys, strict=True)
                    if key in errors]  # fmt: skip
        report_problems.extend(problems)
        results = [work / f"{key}.npz" for key in split_plan.keys if key not in errors]
        count = sum(outputs.get(key, 0) for key in split_plan.keys if key not in errors)
        if count == 0:
            logger.error("prepare: split %s gives no sequence (%d inputs, %d problems): no store written",
                         split, len(split_plan.inputs), len(problems))  # fmt: skip
            empty.append(split)
            continue
        writer = StoreWriter(target, overwrite=True)
        try:
            for work_file in results:
                for fields, meta in _load_work(work_file):
                    writer.add(fields, fps=meta.pop("fps"), betas=np.asarray(meta.pop("betas"), np.float32),
                               gender=meta.pop("gender"), meta=meta)  # fmt: skip
            manifest = {
                "experiment_id": plan.experiment_id,
                "split": split,
                "config": json.loads(plan.config_json),
                "inputs": len(split_plan.inputs),
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
                f"prepare {plan.experiment_id} split {split}: {len(split_plan.inputs)} inputs, "
                f"{len(problems)} problems\n"
                f"finished {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; workers {workers}"
                f"{'; dask ' + config.dask if config.dask else ''}; reused {split_plan.done} results of an "
                f"earlier run; discarded {plan.stale} stale results\n"
                f"timings: select + per-sequence work (all splits) {work_seconds:.2f} s, "
                f"assembling this split {time.perf_counter() - assembling:.2f} s\n"
                + "".join(f"problem: {p}: {e}\n" for p, e in problems)
            )
            (writer.staging / "prepare.log").write_text(log)
            writer.close(manifest)
        except BaseException:
            writer.abort()
            raise
        store_manifest = read_manifest(target) or {}
        stores[split] = target
        seq_counts[split] = int(store_manifest["sequences"])
        frame_counts[split] = int(store_manifest["frames"])
        logger.info("%s: %d sequences, %d frames", target, seq_counts[split], frame_counts[split])
    shutil.rmtree(out / _STAGING, ignore_errors=True)
    return PrepareReport(
        plan.experiment_id,
        stores,
        seq_counts,
        frame_counts,
        report_problems,
        time.perf_counter() - start,
        empty,
        plan.stale,
    )


def _run_on_dask(
    address: str,
    calls: list[tuple[tuple[Any, ...], str]],
    finished_one: Callable[[str, str | None], None],
) -> None:
    """Run ``_work_one`` for every call on the Dask cluster at ``address``; results stay on the shared filesystem
    (only a key and an error message come back through the scheduler)."""
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
                _key, error = future.result()
                finished_one(futures[future], error)
        except BaseException:
            client.cancel(list(futures))
            raise


def _finished(target: Path, experiment: str, config: dict[str, Any]) -> bool:
    """The store at ``target`` was made by this experiment with this config (a name alone is not enough)."""
    manifest = read_manifest(target)
    return bool(manifest and manifest.get("experiment_id") == experiment and manifest.get("config") == config)


def _versions() -> dict[str, str]:
    import numpy

    return {"amasskit": __version__, "numpy": numpy.__version__}
