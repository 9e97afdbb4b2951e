"""What is in this folder: one summary for everything amasskit writes (``amasskit info`` on any output).

:func:`describe_output` recognises each output by its own marker, never by its name: a store or pose set
(``manifest.json`` of format ``amasskit.store``), a training set (``amasskit.prior-data``), a prior training run
(``checkpoint.pt``, ``model.pt``), a model file, a prepare output (a folder of stores), a conversion (``convert_report
.json``), a HumanML3D build (``humanml3d.json``), a converted pose list, a prior evaluation report, a catalog and an unpack target. Motion files themselves
are :func:`amasskit.io.read_header`'s.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._util.paths import user_path

__all__ = ["OutputSummary", "describe_output"]


@dataclass(frozen=True)
class OutputSummary:
    """One amasskit output: its ``kind``, a one-line ``summary`` and the ``details`` it was made from (for JSON)."""

    path: Path
    kind: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "summary": self.summary, **self.details}


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _store(path: Path) -> OutputSummary | None:
    from .store import read_manifest

    manifest = read_manifest(path)
    if manifest is None:
        return None
    try:
        sequences, frames = int(manifest.get("sequences", 0)), int(manifest.get("frames", 0))
    except (TypeError, ValueError):  # a manifest amasskit did not write whole: not described as a store
        return None
    kind = "pose set" if manifest.get("kind") == "pose-set" else "store"
    joints = (manifest.get("pose_set") or {}).get("joints")
    what = f"{frames:,} poses ({joints})" if kind == "pose set" else f"{frames:,} frames"
    return OutputSummary(
        path,
        kind,
        f"{kind}: {sequences:,} sequences, {what}; split {manifest.get('split', '-')}, "
        f"experiment {manifest.get('experiment_id')}",
        {
            "sequences": sequences,
            "frames": frames,
            "experiment_id": manifest.get("experiment_id"),
            "split": manifest.get("split"),
        },
    )


def _training_set(path: Path) -> OutputSummary | None:
    manifest = _json(path / "manifest.json")
    if not isinstance(manifest, dict) or manifest.get("format") != "amasskit.prior-data":
        return None
    poses = manifest.get("poses") or {}
    metric = (manifest.get("metric") or {}).get("name")
    return OutputSummary(
        path,
        "training set",
        f"training set: {manifest.get('samples', 0):,} noisy samples of "
        f"{manifest.get('sources', 0):,} clean poses, {(manifest.get('config') or {}).get('k')} nearest by {metric} "
        f"distance, from the pose set {poses.get('path')}",
        {
            "samples": manifest.get("samples"),
            "experiment_id": manifest.get("experiment_id"),
            "poses": poses.get("path"),
        },
    )


def _model(path: Path) -> OutputSummary | None:
    from .errors import CheckpointError
    from .prior import load_model

    try:
        model = load_model(path)
    except CheckpointError:
        return None
    info: dict[str, Any] = getattr(model, "info", {}) or {}
    metrics = info.get("metrics") or {}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
    at = info.get("metrics_step", info.get("step"))
    figures = f"; validation at step {at}: {shown}" if shown else "; no validation recorded"
    return OutputSummary(
        path,
        "prior model",
        f"prior model: {model.config.joints} joints, trained {info.get('step')} steps{figures}",
        {"step": info.get("step"), "metrics": metrics},
    )


def _run(path: Path) -> OutputSummary | None:
    files = [path / name for name in ("model.pt", "checkpoint.pt") if (path / name).is_file()]
    if not files:
        return None
    found = _model(files[0])
    if found is None:
        return None
    config = _json(path / "config.json") or {}
    done = "finished" if (path / "model.pt").is_file() else "unfinished (run it again to resume)"
    return OutputSummary(
        path,
        "prior run",
        f"prior run, {done}, of {config.get('steps', '?')} steps on "
        f"{config.get('data')}: {found.summary.removeprefix('prior model: ')}",
        found.details | {"config": config},
    )


def _conversion(path: Path) -> OutputSummary | None:
    report = _json(path / "convert_report.json")
    if not isinstance(report, dict):
        return None
    files = report.get("files") or {}
    frames = sum(float(s.get("frames", 0)) for s in files.values() if isinstance(s, dict))
    return OutputSummary(
        path,
        "conversion",
        f"conversion to {report.get('target')}: {len(files)} file{'s' if len(files) != 1 else ''}, "
        f"{int(frames):,} frames, {len(report.get('problems') or [])} problems "
        f"(schedule {report.get('schedule')})",
        {"files": len(files), "target": report.get("target")},
    )


def _humanml3d(path: Path) -> OutputSummary | None:
    manifest = _json(path / "humanml3d.json")
    if not isinstance(manifest, dict) or manifest.get("format") != "amasskit.humanml3d":
        return None
    motions = manifest.get("motions") or {}
    settings = manifest.get("settings") or {}
    frames = int(manifest.get("frames") or 0)
    published = "as published" if manifest.get("published") else "not the published data"
    return OutputSummary(
        path,
        "humanml3d",
        f"HumanML3D ({settings.get('mode')}: {published}): {len(motions):,} motions with their mirrors, {frames:,} "
        f"frames ({frames / 20 / 3600:.2f} h at 20 fps), {len(manifest.get('skipped') or {}):,} index rows skipped",
        {"motions": len(motions), "mode": settings.get("mode"), "frames": frames},
    )


def _prepared(path: Path) -> OutputSummary | None:
    stores = [s for s in (_store(p) for p in sorted(path.iterdir()) if p.is_dir()) if s is not None]
    if not stores:
        return None
    kinds = {s.kind for s in stores}
    names = ", ".join(f"{s.path.name} ({s.details['sequences']:,} sequences)" for s in stores)
    kind = "pose sets" if kinds == {"pose set"} else "stores"
    kind = kind if len(stores) > 1 else kind.removesuffix("s")
    return OutputSummary(
        path, kind, f"{len(stores)} {kind}: {names}", {"sets": [str(s.path) for s in stores]}
    )


def _catalog(path: Path) -> OutputSummary | None:
    from .catalog import DEFAULT_DB_NAME, Catalog
    from .errors import CatalogError

    db = path / DEFAULT_DB_NAME if path.is_dir() else path
    if not db.is_file():
        return None
    try:
        with Catalog.open(db) as cat:
            count, schemes, problems = len(cat), cat.schemes(), len(cat.problems())
    except CatalogError:
        return None
    return OutputSummary(
        path,
        "catalog",
        f"catalog {db.name}: {count:,} motion files, {problems} problems; splits "
        f"{', '.join(schemes) or 'none'}",
        {"files": count, "schemes": schemes},
    )


def _unpacked(path: Path) -> OutputSummary | None:
    from .archives import RECORD_NAME

    record = _json(path / RECORD_NAME)
    if not isinstance(record, dict):
        return None
    archives = record.get("archives") or {}
    verified = sum(1 for a in archives.values() if isinstance(a, dict) and a.get("verified"))
    return OutputSummary(
        path,
        "unpack target",
        f"unpack target: {len(archives)} archives unpacked, {verified} verified",
        {"archives": sorted(archives)},
    )


def _pose_list(path: Path) -> OutputSummary | None:
    try:
        with open(path, "rb") as raw, np.load(raw, allow_pickle=False) as npz:
            if "poses" not in npz.files or "ids" not in npz.files or "mocap_framerate" in npz.files:
                return None
            shape = npz["poses"].shape
            error = (
                float(npz["vertex_error_mean"].mean()) * 1000 if "vertex_error_mean" in npz.files else None
            )
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    extra = f", mean vertex error {error:.2f} mm" if error is not None else ""
    return OutputSummary(
        path,
        "pose list",
        f"pose list: {shape[0]:,} poses of {shape[1]} joints{extra}",
        {"poses": int(shape[0]), "joints": int(shape[1])},
    )


def _evaluation(path: Path) -> OutputSummary | None:
    report = _json(path)
    if not isinstance(report, dict) or not isinstance(report.get("reports"), dict):
        return None
    inputs = report.get("inputs") or {}
    return OutputSummary(
        path,
        "prior evaluation",
        f"prior evaluation of {', '.join(report['reports'])} on "
        f"{inputs.get('clips', '?')} clips of {len(inputs.get('files') or [])} files",
        {"models": list(report["reports"])},
    )


def describe_output(path: str | os.PathLike[str]) -> OutputSummary | None:
    """What amasskit output is at ``path`` (None: none amasskit knows; motion files are :func:`amasskit.io.read_header`'s).

    Folders are tried as a store or pose set, a training set, a prior run, a conversion, a folder of stores, an
    unpack target and a catalog's folder, in that order; files as a model (``.pt``), a pose list (``.npz``), an
    evaluation report (``.json``) or a catalog (``.sqlite``).
    """
    where = user_path(path)
    if where.is_dir():
        for describe in (_store, _training_set, _run, _conversion, _humanml3d, _prepared):
            found = describe(where)
            if found is not None:
                return found
        tree = [
            d for d in (_unpacked(where), _catalog(where)) if d is not None
        ]  # an AMASS tree: either or both
        if not tree:
            return None
        details = {k: v for d in tree for k, v in d.details.items()}
        return OutputSummary(
            where, " and ".join(d.kind for d in tree), "; ".join(d.summary for d in tree), details
        )
    if not where.is_file():
        return None
    by_suffix = {".pt": _model, ".tar": _model, ".npz": _pose_list, ".json": _evaluation, ".sqlite": _catalog}
    reader = by_suffix.get(where.suffix.lower())
    return None if reader is None else reader(where)
