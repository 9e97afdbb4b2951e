"""Planning a prepare run: what each split's store needs (create, replace, keep), which results can be reused, and
every refusal before any work starts."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._version import __version__
from ..catalog import Catalog
from ..errors import (
    ConfigError,
    EmptySelectionError,
    OutputExistsError,
)
from ..store import read_manifest, target_state
from ._config import PrepareConfig

logger = logging.getLogger(__name__)

STAGING = ".amasskit-prepare"  # out/.amasskit-prepare/work/<key>.npz: per-sequence results of the run
LOCK = (
    ".amasskit-prepare.lock"  # out/.amasskit-prepare.lock: one run per out (never deleted, see _util.locking)
)


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


def work_dir(out: Path) -> Path:
    return out / STAGING / "work"


def _existing_work(out: Path) -> list[str]:
    folder = work_dir(out)
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
    memberships: dict[str, int] = {}
    for recs in selections.values():
        for r in recs:
            memberships[r.path] = memberships.get(r.path, 0) + 1
    shared = sum(n > 1 for n in memberships.values())
    if shared:  # an overlapping scheme (spl-datasets): said, since its stores are not disjoint
        logger.warning("scheme %s puts %d sequences in more than one split: its stores share them", config.scheme,
                       shared)  # fmt: skip
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
            find_model_file(kind, gender, model_dir=config.body_models)
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


def _finished(target: Path, experiment: str, config: dict[str, Any]) -> bool:
    """The store at ``target`` was made by this experiment with this config (a name alone is not enough)."""
    manifest = read_manifest(target)
    return bool(manifest and manifest.get("experiment_id") == experiment and manifest.get("config") == config)
