"""The prepare config: every key checked (type, range, choices) when it is made, from a mapping, a file or flags."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._util.configfile import config_values, load_yaml_or_json
from .._util.paths import PATH_KEYS, config_path, user_path
from ..errors import (
    ConfigError,
)

logger = logging.getLogger(__name__)

# Frame rates prepare accepts from a file: real captures run from 30 to a few hundred fps; a rate far outside would
# resample a short file into millions of frames (or one), so it is named as a problem instead.
FPS_RANGE = (1.0, 2000.0)


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML (``.yaml``/``.yml``) or JSON file, its paths resolved.

    The values of path keys (:data:`~amasskit._util.paths.PATH_KEYS`: ``catalog``, ``out``, ``body_models``,
    ``data``, ``val_data``, ``clean``, ``poses``) have ``~`` and ``$VARIABLES`` expanded, and a relative path is taken
    from the config file's folder, not from the working directory: a config kept beside its data means the same
    files from wherever it is run.

    Raises:
        ConfigError: no such file, unreadable, not valid YAML/JSON, or not a mapping.
    """
    file = user_path(path)
    if not file.exists():
        raise ConfigError(f"{file}: no such config file")
    data = load_yaml_or_json(file, ConfigError)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: a config is a mapping of keys to values, got {type(data).__name__}")
    for key in PATH_KEYS & set(data):
        if isinstance(data[key], str) and data[key]:
            data[key] = str(config_path(data[key], file.parent))
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
    if key == "scheme" and isinstance(value, str) and value.lower() == "none":
        return None  # `--scheme none`, as the help says: no split scheme, one store `all`
    if key in ("catalog", "out", "scheme", "name", "body_models", "dask"):
        if isinstance(value, os.PathLike) and key in ("catalog", "out", "body_models"):
            value = os.fspath(value)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key} must be a non-empty string, got {value!r}", key=key)
        return str(user_path(value)) if key in ("catalog", "out", "body_models") else value
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


@dataclass(frozen=True, kw_only=True)
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
        values = config_values(cls, data, required=("catalog", "out"), what="prepare config")
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
