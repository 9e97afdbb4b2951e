"""Building HumanML3D from a catalogued AMASS (SMPL+H) and the body models: :func:`build_humanml3d`.

For every row of the index (:mod:`._index`): the file's joints at the chosen frames (the SMPL+H model, 10 betas, no
DMPLs: in ``exact`` mode the male model only where the file's gender is the string ``'male'``, the female model
otherwise, as the published procedure; in ``fixed`` mode the file's own gender), turned Y-up (``(x, y, z) -> (x, z,
y)``) and x negated, then the motion and its mirror (``M<id>``) to features and ``new_joints``. One task per source
file (its rows share one body-model pass), in a process pool or on a Dask cluster.

The output folder is HumanML3D's own layout, which text-to-motion code reads unchanged::

    OUT/new_joint_vecs/<id>.npy, M<id>.npy   (T - 1, 263) float32
    OUT/new_joints/<id>.npy, M<id>.npy       (T - 1, 22, 3) float32
    OUT/Mean.npy, OUT/Std.npy                (263,) float32, over every motion built
    OUT/train.txt, val.txt, test.txt, train_val.txt, all.txt   the published splits, less the motions not built
    OUT/humanml3d.json                       settings, every motion's source and frames, every row skipped and why

(The texts are HumanML3D's own ``texts.zip``, from its repository.) Every file is written atomically; a rerun keeps
the motions already built with the same settings and builds the rest (the same bytes as one uninterrupted run).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from .. import __version__
from .._util.atomic import atomic_open
from .._util.cluster import run_on_dask
from .._util.locking import exclusive_lock
from .._util.paths import user_path
from .._util.processes import run_in_pool
from ..catalog import Catalog
from ..errors import AmassKitError, InvalidArgumentError, OutputExistsError
from ._data import PUBLISHED_SPLITS, published_split, target_lengths
from ._features import FEATURE_SIZE, FEATURE_SLICES, FOOT_THRESHOLD, features, recover_joints
from ._index import MODES, SKIP_REASONS, TARGET_FPS, Mode, PlannedRow, crop_frames, plan_rows, read_index
from ._mirror import mirror_joints

__all__ = ["MANIFEST_NAME", "HumanML3DReport", "build_humanml3d", "check_index", "mean_std", "write_stores"]

logger = logging.getLogger(__name__)

MANIFEST_NAME: Final = "humanml3d.json"
FORMAT: Final = "amasskit.humanml3d"
_LOCK: Final = ".amasskit-humanml3d.lock"
_Y_UP: Final = [0, 2, 1]  # AMASS's Z-up (x, y, z) -> HumanML3D's Y-up (x, z, y)


@dataclass
class HumanML3DReport:
    """What a build did: ``written`` motions built now, ``kept`` from an earlier run, ``skipped`` rows by reason code
    (:data:`amasskit.humanml3d.SKIP_REASONS`, plus ``failed: ...`` for a file that could not be read), ``truncated``
    rows whose crop ran past their file's end, ``frames`` of features over every motion built (mirrors included),
    ``seconds`` taken."""

    out: Path
    mode: str
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0

    @property
    def motions(self) -> int:
        """Motions built (each with its mirror)."""
        return len(self.written) + len(self.kept)

    @property
    def hours(self) -> float:
        """Hours of motion in the features, at 20 fps (mirrors included)."""
        return self.frames / TARGET_FPS / 3600

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(self.skipped.values()).most_common())


def check_index(
    catalog: str | os.PathLike[str] | Catalog,
    *,
    mode: Mode = "exact",
    humanact12: str | os.PathLike[str] | None = None,
) -> list[PlannedRow]:
    """Every row of the published index mapped to its catalogued file and frames, or to why it cannot be built
    (before any work; see :func:`amasskit.humanml3d.plan_rows`)."""
    acts = _humanact12_lengths(humanact12) if humanact12 is not None else None
    if isinstance(catalog, Catalog):
        records = catalog.records()
    else:
        with Catalog.open(catalog) as opened:
            records = opened.records()
    return plan_rows(read_index(), records, mode=mode, humanact12=acts)


def _humanact12_lengths(folder: str | os.PathLike[str]) -> dict[str, int]:
    root = user_path(folder)
    if not root.is_dir():
        raise InvalidArgumentError(f"--humanact12 {root}: not a folder")
    lengths = {}
    for path in sorted(root.glob("*.npy")):
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError) as exc:
            logger.warning("%s: not a joints file (%s)", path, exc)
            continue
        if len(shape) == 3 and shape[1] >= 22 and shape[2] == 3:
            lengths[path.name] = int(shape[0])
        else:
            logger.warning("%s: not (T, 24, 3) joints, shape %s", path, shape)
    return lengths


def build_humanml3d(
    catalog: str | os.PathLike[str],
    body_models: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    mode: Mode = "exact",
    humanact12: str | os.PathLike[str] | None = None,
    convert_smplx: bool = False,
    store: bool = False,
    workers: int | None = None,
    dask: str | None = None,
    strict: bool = False,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> HumanML3DReport:
    """Build HumanML3D's files from a catalogued AMASS and the body models (see the module).

    Args:
        catalog: a catalog (database or scanned folder) of the SMPL+H release.
        body_models: the folder of ``smplh/<gender>/model.npz``.
        out: the output folder (created).
        mode: ``exact`` (the published data, quirks included) or ``fixed`` (exactly 20 fps by time, each file's own
            gender: not the published data, and the manifest says so).
        humanact12: the folder of HumanAct12's joint files (``<name>.npy``), for its 1,191 rows; else skipped.
        convert_smplx: rows whose file the catalog holds only in the SMPL-X release are converted to SMPL+H first
            (:func:`amasskit.convert.convert_files`, into ``out/.smplh-from-smplx``; the body-model folder needs the
            SMPL-X models and the transfer file) and built from the conversion; else they are skipped. Either way the
            manifest names them: the published data come from SMPL+H, so these motions differ from it by the fit.
        store: also write amasskit stores of the result, ``out/stores/<split>`` for the published ``train``, ``val``
            and ``test`` (fields ``features`` ``(T, 263)`` and ``joints`` ``(T, 22, 3)``, memory-mapped, for
            :class:`amasskit.data.ClipDataset` and the :class:`~amasskit.data.Loader`); rewritten every run.
        workers: processes (default: all cores). dask: a Dask scheduler's address instead.
        strict: stop at the first file that fails (else reported, and the rest built).
        overwrite: replace a folder built with other settings (else refused).
        progress: ``progress(files_done, files)``.

    Raises:
        OutputExistsError: ``out`` holds a build of other settings (without ``overwrite``), or something else.
        InvalidArgumentError: a bad mode, body-model folder or HumanAct12 folder.
    """
    if mode not in MODES:
        raise InvalidArgumentError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    started = time.perf_counter()
    root = user_path(out)
    models = user_path(body_models)
    if not models.is_dir():
        raise InvalidArgumentError(f"--body-models {models}: not a folder")
    with Catalog.open(catalog) as opened:
        records = opened.records()
        catalog_root = opened.root
    acts_dir = None if humanact12 is None else user_path(humanact12)
    acts = None if acts_dir is None else _humanact12_lengths(acts_dir)
    planned = plan_rows(read_index(), records, mode=mode, humanact12=acts)
    settings = {
        "mode": mode,
        "catalog": str(catalog_root),
        "body_models": str(models),
        "humanact12": None if acts_dir is None else str(acts_dir),
        "target_lengths": [float(x) for x in target_lengths()],
        "foot_threshold": FOOT_THRESHOLD,
        "convert_smplx": convert_smplx,
    }
    root.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(root / _LOCK, what=f"humanml3d into {root}"):
        report = _build_locked(
            root, planned, settings, acts_dir, workers, dask, strict, overwrite, progress, started
        )
        if store:
            write_stores(root)
        return report


def _build_locked(
    root: Path,
    planned: list[PlannedRow],
    settings: dict[str, Any],
    acts_dir: Path | None,
    workers: int | None,
    dask: str | None,
    strict: bool,
    overwrite: bool,
    progress: Callable[[int, int], None] | None,
    started: float,
) -> HumanML3DReport:
    earlier = _earlier_manifest(root, settings, overwrite=overwrite)
    report = HumanML3DReport(root, settings["mode"])
    if settings["convert_smplx"]:
        planned = _with_smplx_converted(planned, root, settings, workers, dask)
    for p in planned:
        if p.skip is not None:
            report.skipped[p.row.motion_id] = p.skip
        elif p.truncated:
            report.truncated.append(p.row.motion_id)
    built = dict(earlier.get("motions", {}))
    tasks: dict[tuple[str, str], list[PlannedRow]] = defaultdict(list)
    for p in planned:
        if p.skip is not None:
            continue
        if _outputs_exist(root, p.row.motion_id):
            # built before with these settings (the manifest's, on disk before any motion; every file atomic),
            # though a run stopped before its manifest said so
            if p.row.motion_id not in built:
                frames = np.load(root / "new_joint_vecs" / f"{p.row.motion_id}.npy", mmap_mode="r").shape[0]
                built[p.row.motion_id] = {"source": p.path, "frames": int(frames)}
            report.kept.append(p.row.motion_id)
            continue
        kind = "humanact12" if p.row.is_humanact12 else "converted" if p.converted else "amass"
        assert p.path is not None
        tasks[(kind, p.path)].append(p)
    _write_manifest(root, settings, built, report)  # the settings are on disk before any motion
    calls = []
    for (kind, path), rows in tasks.items():
        base = {"humanact12": acts_dir, "converted": root / CONVERTED, "amass": Path(settings["catalog"])}[
            kind
        ]
        assert base is not None  # HumanAct12 rows are planned only with their folder
        source = str(base / path)
        jobs = [(p.row.motion_id, p.frames.tolist()) for p in rows if p.frames is not None]
        shown = f"{CONVERTED}/{path}" if kind == "converted" else path
        calls.append(((kind, source, jobs, settings, str(root)), (shown, [p.row.motion_id for p in rows])))
    done = 0
    last_save = time.monotonic()

    def finished(tag: tuple[str, list[str]], result: dict[str, int] | None, error: str | None) -> None:
        nonlocal done, last_save
        done += 1
        path, ids = tag
        if error is not None:
            for motion_id in ids:
                report.skipped[motion_id] = f"failed: {error}"
            logger.warning("%s: %s", path, error)
            if strict:
                raise AmassKitError(f"humanml3d stopped (--strict): {path}: {error}")
        else:
            assert result is not None
            for motion_id, frames in result.items():
                built[motion_id] = {"source": path, "frames": frames}
                if tag[0].startswith(CONVERTED):
                    built[motion_id]["converted_from_smplx"] = True
                report.written.append(motion_id)
        if time.monotonic() - last_save > 30:  # the manifest follows a long build
            _write_manifest(root, settings, built, report)
            last_save = time.monotonic()
        if progress is not None:
            progress(done, len(calls))

    def failed(tag: tuple[str, list[str]], exc: Exception) -> None:
        finished(tag, None, f"{type(exc).__name__}: {exc}")

    try:
        _run(calls, workers, dask, lambda t, r: finished(t, r, None), failed)
    except BaseException:
        _write_manifest(root, settings, built, report)  # stopped: what is built is recorded
        raise
    if progress is not None and not calls:
        progress(0, 0)
    order = [p.row.motion_id for p in planned if p.row.motion_id in built]
    report.frames = 2 * sum(int(built[m]["frames"]) for m in order)
    mean, std = mean_std([root / "new_joint_vecs" / f"{name}.npy" for m in order for name in (m, f"M{m}")])
    for name, values in (("Mean", mean), ("Std", std)):
        with atomic_open(root / f"{name}.npy") as fp:
            np.save(fp, values)
    present = {name for m in order for name in (m, f"M{m}")}
    for split in PUBLISHED_SPLITS:
        ids = [i for i in published_split(split) if i in present]
        with atomic_open(root / f"{split}.txt") as fp:
            fp.write("".join(f"{i}\n" for i in ids).encode())
    report.seconds = time.perf_counter() - started
    _write_manifest(root, settings, built, report)
    return report


def _run(
    calls: list[tuple[tuple[Any, ...], Any]],
    workers: int | None,
    dask: str | None,
    on_result: Callable[[Any, Any], None],
    on_error: Callable[[Any, Exception], None],
) -> None:
    """Every call of :func:`_build_file`: on a Dask cluster, in a process pool, or here (one process)."""
    if dask is not None and calls:
        run_on_dask(dask, _build_file, calls, on_result, on_error=on_error, what="files")
    elif (processes := min(len(calls), workers or os.cpu_count() or 1)) > 1:
        run_in_pool(_build_file, calls, on_result, on_error=on_error, processes=processes, what="files")
    else:
        for args, tag in calls:
            try:
                result = _build_file(*args)
            except Exception as exc:  # reported per file, the rest built (or stopped, strict)
                on_error(tag, exc)
            else:
                on_result(tag, result)


CONVERTED: Final = ".smplh-from-smplx"


def _with_smplx_converted(
    planned: list[PlannedRow], root: Path, settings: Mapping[str, Any], workers: int | None, dask: str | None
) -> list[PlannedRow]:
    """``planned`` with every row found only in the SMPL-X release planned on its file converted to SMPL+H (below
    ``root/.smplh-from-smplx``, the catalog's relative paths; a rerun keeps the conversions done)."""
    from ..convert import convert_files
    from ..io import read_header

    wanted = {p.path for p in planned if p.skip == "smplx_only" and p.path is not None}
    if not wanted:
        return planned
    inputs = root / ".smplx-inputs"  # the files to convert, linked under their catalog paths
    for rel in sorted(wanted):
        link = inputs / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(Path(settings["catalog"]) / rel)
    report = convert_files([inputs], root / CONVERTED, to="smplh", model_dir=settings["body_models"], workers=workers,
                           dask=dask)  # fmt: skip
    for name, error in report.problems:
        logger.warning("%s: not converted to SMPL+H: %s", name, error)
    out = []
    for p in planned:
        if p.skip != "smplx_only" or p.path is None:
            out.append(p)
            continue
        source = Path(p.path)
        converted = source.parent / (source.name.removesuffix("_stageii.npz") + "_poses.npz")
        if not (root / CONVERTED / converted).is_file():
            out.append(p)  # its conversion failed: still skipped, the warning above says why
            continue
        header = read_header(root / CONVERTED / converted)
        taken = crop_frames(p.row, frames=header.num_frames, fps=header.fps, mode=settings["mode"])
        if isinstance(taken, str):
            out.append(PlannedRow(p.row, str(converted), None, taken, converted=True))
        else:
            out.append(PlannedRow(p.row, str(converted), taken[0], truncated=taken[1], converted=True))
    return out


def write_stores(root: str | os.PathLike[str]) -> list[Path]:
    """amasskit stores of a built HumanML3D folder, one per published split (``train``, ``val``, ``test``) under
    ``root/stores``: each motion of the split's list (mirrors included, as listed) a sequence with the fields
    ``features`` ``(T, 263)`` float32 and ``joints`` ``(T, 22, 3)`` float32 (its ``new_joints``), 20 fps, no betas and
    the neutral gender (the features are on the target skeleton); its id, source and whether it is a mirror in the
    sequence's provenance. Replaced whole on every call."""
    from ..store import StoreWriter

    folder = user_path(root)
    manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    motions = manifest.get("motions", {})
    written = []
    for split in ("train", "val", "test"):
        listed = folder / f"{split}.txt"
        names = listed.read_text().split() if listed.is_file() else []
        writer = StoreWriter(folder / "stores" / split, overwrite=True)
        try:
            for name in names:
                base = name.removeprefix("M")
                vecs = np.load(folder / "new_joint_vecs" / f"{name}.npy", allow_pickle=False)
                joints = np.load(folder / "new_joints" / f"{name}.npy", allow_pickle=False)
                meta = {"id": name, "source": motions.get(base, {}).get("source"), "mirror": name != base}
                writer.add({"features": vecs, "joints": joints}, fps=TARGET_FPS, betas=np.zeros(0), gender="neutral",
                           meta=meta)  # fmt: skip
            writer.close({"humanml3d": {"split": split, "mode": manifest.get("settings", {}).get("mode")}})
        except BaseException:
            writer.abort()
            raise
        written.append(folder / "stores" / split)
    return written


def _outputs_exist(root: Path, motion_id: str) -> bool:
    return all(
        (root / folder / f"{name}.npy").is_file()
        for folder in ("new_joint_vecs", "new_joints")
        for name in (motion_id, f"M{motion_id}")
    )


def _earlier_manifest(root: Path, settings: Mapping[str, Any], *, overwrite: bool) -> dict[str, Any]:
    """The manifest of an earlier build into ``root`` with the same settings; ``{}`` for a fresh folder (or one
    replaced, ``overwrite``)."""
    path = root / MANIFEST_NAME
    if not path.exists():
        if (root / "new_joint_vecs").exists() or (root / "new_joints").exists():
            raise OutputExistsError(
                f"{root}: holds HumanML3D folders amasskit did not write ({MANIFEST_NAME} missing)"
            )
        return {}
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OutputExistsError(f"{path}: unreadable ({exc}); remove the folder or choose another") from None
    if earlier.get("format") != FORMAT:
        raise OutputExistsError(f"{path}: not an amasskit HumanML3D manifest")
    if earlier.get("settings") == dict(settings):
        return earlier
    if not overwrite:
        changed = sorted(k for k in settings if earlier.get("settings", {}).get(k) != settings[k])
        raise OutputExistsError(
            f"{root}: built with other settings ({', '.join(changed)}); pass --overwrite to rebuild it, or choose "
            "another folder"
        )
    logger.info("%s: built with other settings: rebuilding every motion", root)
    for folder in ("new_joint_vecs", "new_joints"):  # amasskit's (the manifest says so): none may be kept
        shutil.rmtree(root / folder, ignore_errors=True)
    return {}


def _write_manifest(
    root: Path, settings: dict[str, Any], built: dict[str, Any], report: HumanML3DReport
) -> None:
    manifest = {
        "format": FORMAT,
        "version": 1,
        "amasskit": __version__,
        "settings": settings,
        "published": settings["mode"] == "exact",
        "note": (
            "the published procedure, quirks included"
            if settings["mode"] == "exact"
            else "NOT the published data: exactly 20 fps by time and each file's own gender (the published data "
            "keep every int(fps / 20)-th frame and use the female model unless gender == 'male')"
        ),
        "motions": built,
        "skipped": {k: report.skipped[k] for k in sorted(report.skipped)},
        "skip_reasons": SKIP_REASONS,
        "truncated": sorted(report.truncated),
        "frames": report.frames,
    }
    with atomic_open(root / MANIFEST_NAME) as fp:
        fp.write(json.dumps(manifest, indent=1).encode())


# ------------------------------------------------------------------------------------------------ worker

_MODELS: dict[tuple[str, str], Any] = {}


def _joints_of_file(source: str, frames: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
    """``(F, 52, 3)`` float64 joints of an AMASS file at ``frames`` (source frames in exact mode, 20 fps frames in
    fixed mode), Y-up and x negated."""
    import torch

    from ..body import BodyModel
    from ..io import NpzArchive, read
    from ..ops import resample

    seq = read(source, dtype=np.float32)
    if settings["mode"] == "exact":
        with NpzArchive(source) as npz:
            raw = npz.read_scalar("gender")
        gender = "male" if isinstance(raw, str) and raw == "male" else "female"  # the published rule
    else:
        gender = seq.gender.value
        seq = resample(seq, TARGET_FPS)
    key = (settings["body_models"], gender)
    if key not in _MODELS:
        _MODELS[key] = BodyModel.load("smplh", gender, model_dir=settings["body_models"], dmpl=False)
    model = _MODELS[key]
    if frames.max() >= seq.num_frames:
        raise InvalidArgumentError(f"{source}: frame {frames.max()} asked of {seq.num_frames}")
    assert seq.pose_hand is not None  # an SMPL+H file
    with torch.no_grad():
        posed = model.with_shape(seq.betas[:10]).with_pose(
            root_orient=seq.root_orient[frames],
            pose_body=seq.pose_body[frames],
            pose_hand=seq.pose_hand[frames],
            trans=seq.trans[frames],
        )
        joints = posed.joints.numpy().astype(np.float64)
    joints = joints[..., _Y_UP]
    joints[..., 0] *= -1
    return joints


def _build_file(
    kind: str, source: str, jobs: list[tuple[str, list[int]]], settings: Mapping[str, Any], out: str
) -> dict[str, int]:
    """Build the motions of one source file: ``jobs`` are ``(motion id, frames)``; returns each motion's feature
    frames. The whole file's frames are posed in one pass."""
    needed = np.unique(np.concatenate([np.asarray(f, dtype=np.int64) for _, f in jobs]))
    if kind == "humanact12":
        joints = np.load(source, allow_pickle=False).astype(np.float64)[needed]  # taken whole, as published
    else:
        joints = _joints_of_file(
            source, needed, settings
        )  # (len(needed), 52, 3): only the frames the rows take
    lengths = np.asarray(settings["target_lengths"])
    result = {}
    for motion_id, frames in jobs:
        motion = joints[np.searchsorted(needed, np.asarray(frames, dtype=np.int64))]
        for name, data in ((motion_id, motion), (f"M{motion_id}", mirror_joints(motion))):
            vecs = features(data[:, :22], target_lengths=lengths, foot_threshold=settings["foot_threshold"])
            if not np.isfinite(vecs).all():
                raise InvalidArgumentError(f"motion {name}: features not finite (a degenerate pose)")
            _save(Path(out) / "new_joint_vecs" / f"{name}.npy", vecs)
            _save(Path(out) / "new_joints" / f"{name}.npy", recover_joints(vecs))
        result[motion_id] = len(motion) - 1
    return result


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, fsync=False) as fp:
        np.save(fp, array)


# ------------------------------------------------------------------------------------------------ statistics


def mean_std(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """HumanML3D's normalisation over the feature files ``paths``: the mean of every feature, and the standard
    deviation of each part (:data:`amasskit.humanml3d.FEATURE_SLICES`) spread over its features (the mean of their
    deviations), as the published ``Mean.npy`` / ``Std.npy``; ``(263,)`` float32 each. Files holding a NaN are left
    out, as published. Accumulated in float64, one file at a time (Chan's pairwise update)."""
    count = 0
    mean = np.zeros(FEATURE_SIZE)
    m2 = np.zeros(FEATURE_SIZE)
    for path in paths:
        data = np.load(path, allow_pickle=False).astype(np.float64)
        if len(data) == 0 or np.isnan(data).any():
            continue
        n = len(data)
        file_mean = data.mean(0)
        file_m2 = ((data - file_mean) ** 2).sum(0)
        delta = file_mean - mean
        total = count + n
        mean = mean + delta * n / total
        m2 = m2 + file_m2 + delta**2 * count * n / total
        count = total
    if count == 0:
        return np.zeros(FEATURE_SIZE, np.float32), np.ones(FEATURE_SIZE, np.float32)
    std = np.sqrt(m2 / count)
    for part in FEATURE_SLICES.values():
        std[part] = std[part].mean()
    return mean.astype(np.float32), std.astype(np.float32)
