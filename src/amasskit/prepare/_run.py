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
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util.cluster import run_on_dask
from .._util.locking import exclusive_lock
from .._util.processes import run_in_pool, worker_context
from .._version import __version__
from ..errors import (
    AmassKitError,
)
from ..store import StoreWriter, read_manifest
from ._config import PrepareConfig
from ._plan import LOCK, STAGING, PreparePlan, plan_prepare, work_dir
from ._work import load_results, load_summary, work_one

logger = logging.getLogger(__name__)


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
    work = work_dir(out)
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
    with exclusive_lock(out / LOCK, what=f"prepare into {out}", wait=wait):
        plan = plan_prepare(config, overwrite=overwrite)
        _clean_leftovers(out, plan)
        return _run(config, plan, start, progress)


def _run(
    config: PrepareConfig, plan: PreparePlan, start: float, progress: Callable[[str, int, int], None] | None
) -> PrepareReport:
    work = work_dir(plan.out)
    work.mkdir(parents=True, exist_ok=True)
    errors = _work_all(config, plan, progress)
    work_seconds = time.perf_counter() - start
    outputs = _check_layouts(plan, errors, strict=config.strict)
    report = PrepareReport(plan.experiment_id, {}, {}, {}, empty=list(plan.empty), discarded=plan.stale)
    for split, split_plan in plan.splits.items():
        if split_plan.action == "keep":  # resumed: this split is complete already
            kept = _report_store(report, split, split_plan.target)
            report.problems.extend((p["path"], p["error"]) for p in kept["problems"])
            continue
        problems = [(rel, errors[key]) for rel, key in zip(split_plan.inputs, split_plan.keys, strict=True)
                    if key in errors]  # fmt: skip
        report.problems.extend(problems)
        if sum(outputs.get(key, 0) for key in split_plan.keys if key not in errors) == 0:
            logger.error("prepare: split %s gives no sequence (%d inputs, %d problems): no store written",
                         split, len(split_plan.inputs), len(problems))  # fmt: skip
            report.empty.append(split)
            continue
        timings = f"select + per-sequence work (all splits) {work_seconds:.2f} s"
        _assemble(config, plan, split, [k for k in split_plan.keys if k not in errors], problems, timings)
        _report_store(report, split, split_plan.target)
        logger.info(
            "%s: %d sequences, %d frames", split_plan.target, report.sequences[split], report.frames[split]
        )
    shutil.rmtree(plan.out / STAGING, ignore_errors=True)
    return dataclasses.replace(report, seconds=time.perf_counter() - start)


def _workers(config: PrepareConfig) -> int:
    return max(1, config.workers or os.cpu_count() or 1)


def _work_all(
    config: PrepareConfig, plan: PreparePlan, progress: Callable[[str, int, int], None] | None
) -> dict[str, str]:
    """Every split's results not done yet, each once, on one pool (or Dask); ``{key: error}`` of those that failed."""
    work = work_dir(plan.out)
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

    calls = [((str(plan.root), rel, config, str(work), key), key) for key, rel in jobs.items()]
    workers = _workers(config)
    context = worker_context()
    # A spawned worker re-imports numpy and torch (seconds): with an automatic worker count the pool is used
    # only for enough work; an explicit count is always honoured.
    enough = 2 * workers if context.get_start_method() == "fork" else 16 * workers
    if config.dask is not None and calls:
        run_on_dask(
            config.dask, work_one, calls, lambda key, value: finished_one(key, value[1]), what="sequences"
        )
    elif workers > 1 and len(jobs) > 1 and (config.workers is not None or len(jobs) >= enough):
        run_in_pool(
            work_one,
            calls,
            lambda key, value: finished_one(key, value[1]),
            processes=workers,
            context=context,
            what="sequences",
        )
    else:
        for args, key in calls:
            _key, error = work_one(*args)
            finished_one(key, error)
    return errors


def _check_layouts(plan: PreparePlan, errors: dict[str, str], *, strict: bool) -> dict[str, int]:
    """Every result must fit one store layout: the layout most files give (ties: the first in catalogue order); a
    file that gives another (a field of another width, a field missing) is added to ``errors``, before assembly.

    Returns:
        ``{key: sequences in its result}`` for every readable result.
    """
    work = work_dir(plan.out)
    schemas: dict[str, str] = {}
    outputs: dict[str, int] = {}
    rel_of: dict[str, str] = {}
    for split_plan in plan.splits.values():
        if split_plan.action == "keep":
            continue
        for rel, key in zip(split_plan.inputs, split_plan.keys, strict=True):
            rel_of[key] = rel
            if key in errors or key in outputs or not (work / f"{key}.npz").exists():
                continue
            try:
                schema, outputs[key] = load_summary(work / f"{key}.npz")
            except (OSError, ValueError, KeyError) as exc:
                (work / f"{key}.npz").unlink(missing_ok=True)
                errors[key] = (
                    f"StoreError: {plan.root / rel}: its prepared result is unreadable ({exc}); run again"
                )
                continue
            if schema is not None:
                schemas[key] = json.dumps(schema, sort_keys=True)
    if not schemas:
        return outputs
    tally: dict[str, int] = {}
    for key in schemas:  # catalogue order
        tally[schemas[key]] = tally.get(schemas[key], 0) + 1
    expected = max(tally, key=lambda s: tally[s])  # dicts keep insertion order: ties go to the first seen
    layout = ", ".join(f"{n} {tuple(shape)} {dtype}" for n, (dtype, shape) in json.loads(expected).items())
    for key in schemas:
        if schemas[key] != expected:
            got = ", ".join(f"{n} {tuple(sh)} {dt}" for n, (dt, sh) in json.loads(schemas[key]).items())
            errors[key] = (f"ArrayShapeError: {plan.root / rel_of[key]}: its fields "
                           f"({got}) differ from the other sequences' ({layout})")  # fmt: skip
            if strict:
                raise AmassKitError(f"prepare stopped (--strict): {errors[key]}")
    return outputs


def _assemble(
    config: PrepareConfig,
    plan: PreparePlan,
    split: str,
    keys: list[str],
    problems: list[tuple[str, str]],
    timings: str,
) -> None:
    """Write one split's store from its results in catalogue order: the same bytes whatever the order work
    finished in."""
    split_plan = plan.splits[split]
    assembling = time.perf_counter()
    work = work_dir(plan.out)
    writer = StoreWriter(split_plan.target, overwrite=True)
    try:
        for key in keys:
            for fields, meta in load_results(work / f"{key}.npz"):
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
        # the run's log holds what varies between runs (timings, workers), so the manifest, index and fields stay
        # byte-identical for the same config and inputs
        log = (
            f"prepare {plan.experiment_id} split {split}: {len(split_plan.inputs)} inputs, "
            f"{len(problems)} problems\n"
            f"finished {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; workers {_workers(config)}"
            f"{'; dask ' + config.dask if config.dask else ''}; reused {split_plan.done} results of an "
            f"earlier run; discarded {plan.stale} stale results\n"
            f"timings: {timings}, assembling this split {time.perf_counter() - assembling:.2f} s\n"
            + "".join(f"problem: {p}: {e}\n" for p, e in problems)
        )
        (writer.staging / "prepare.log").write_text(log)
        writer.close(manifest)
    except BaseException:
        writer.abort()
        raise


def _report_store(report: PrepareReport, split: str, target: Path) -> dict[str, Any]:
    """Add the store at ``target`` to ``report``; its manifest."""
    manifest = read_manifest(target) or {}
    report.stores[split] = target
    report.sequences[split] = int(manifest["sequences"])
    report.frames[split] = int(manifest["frames"])
    return manifest


def _versions() -> dict[str, str]:
    import numpy

    return {"amasskit": __version__, "numpy": numpy.__version__}
