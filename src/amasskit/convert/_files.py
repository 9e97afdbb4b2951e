"""Converting files: AMASS motion trees and pose lists, resumable, atomic, with a report.

:func:`convert_files` takes motion files (or folders of a tree) of one model and writes each as a file of the other
in its release's layout (SMPL-X: ``<name>_stageii.npz``; SMPL+H: ``<name>_poses.npz``), mirroring the input tree, so
``amasskit.read``, ``catalog``, ``prepare``, ``render`` and ``view`` take them as they are. Each output also holds its
per-frame errors (``conversion_vertex_error_mean``, ``conversion_vertex_error_max``, ``conversion_joint_error``, in
metres, and ``conversion_iterations``), and ``convert_report.json`` beside them sums up every file. Outputs are
written atomically, so a finished file is whole and a rerun skips it; an unreadable input is reported and the others
carry on (``strict`` stops at the first).

:func:`convert_pose_list` converts an npz of poses (PoseScript / PoseFix style: ``poses (N, 52 or 22, 3)`` or flat,
axis-angle, optional ``ids``) with the neutral bodies and zero shape, order and ids kept.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util.atomic import atomic_open
from .._util.cluster import run_on_dask
from .._util.locking import exclusive_lock
from .._util.paths import user_path
from .._util.processes import run_in_pool
from ..conventions import ModelType
from ..errors import (
    AmassKitError,
    CorruptFileError,
    InvalidArgumentError,
    MotionFileNotFoundError,
    NonFiniteError,
)
from ..io import META_KEY, read, sequence_arrays
from ..layouts import sequence_name

__all__ = ["ConvertReport", "convert_files", "convert_pose_list"]

logger = logging.getLogger(__name__)

_SUFFIX = {ModelType.SMPLH: "_poses.npz", ModelType.SMPLX: "_stageii.npz"}
_CONVERTERS: dict[tuple[Any, ...], Any] = {}  # per process: converters by (source, target, genders, options)


@dataclass(frozen=True)
class ConvertReport:
    """What :func:`convert_files` did: ``written`` and ``skipped`` (already converted) outputs, ``problems``
    (input, ``ErrorType: message``), per-file summaries (millimetres) and the wall time."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def _converter(
    source: str, target: str, source_gender: str, target_gender: str, options: dict[str, Any]
) -> Any:
    from ._converter import RUN_OPTIONS, Converter

    # one converter built per models and structure; each schedule is a copy of it with its run-time settings
    built = {k: v for k, v in options.items() if k not in RUN_OPTIONS}
    key = (source, target, source_gender, target_gender, tuple(sorted(built.items())))
    if key not in _CONVERTERS:
        import torch

        device = built.pop("device", "cpu")
        model_dir = built.pop("model_dir", None)
        _CONVERTERS[key] = Converter.from_folder(
            source,
            target,
            model_dir=model_dir,
            source_gender=source_gender,
            target_gender=target_gender,
            device=device,
            dtype=torch.float32,
            **built,
        )
    return _CONVERTERS[key].with_options(**{k: v for k, v in options.items() if k in RUN_OPTIONS})


def _inputs(paths: Sequence[str | os.PathLike[str]], *, output: Path) -> list[tuple[Path, Path]]:
    """``(file, path relative to its root)`` for every motion file named or below a named folder; below a folder,
    neither the output folder (an output inside the input tree is not converted again) nor hidden files (staging
    files of a killed write, ``.NAME.XXXX.tmp.npz``)."""
    from ..io import FileKind, classify_path

    out = []
    for p in map(user_path, paths):
        if p.is_dir():
            out += [
                (f, f.relative_to(p))
                for f in sorted(p.rglob("*.npz"))
                if classify_path(f) is FileKind.MOTION
                and not f.is_relative_to(output)
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            ]
        else:
            out.append((p, Path(p.name)))
    return out


def _identity(path: Path) -> list[int]:
    """What tells one version of an input file from another without reading it: its size and modification time."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _convert_one(
    path: str, target_path: str, target: str, gender: str, options: dict[str, Any], settings: str = ""
) -> dict[str, float]:
    """Convert one file (in a worker or in process); returns its summary.

    The fit runs on one CPU thread whatever the process has: the CPU's math libraries round some products and
    factorizations differently with the number of threads, and a file must convert to the same bytes by every route
    (in process, a worker pool, a Dask worker). Parallelism comes from converting several files at once (``-j``).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _convert_one_file(path, target_path, target, gender, options, settings)
    finally:
        torch.set_num_threads(threads)


def _convert_one_file(
    path: str, target_path: str, target: str, gender: str, options: dict[str, Any], settings: str
) -> dict[str, float]:
    identity = _identity(Path(path))
    seq = read(path, dtype=np.float64)
    target_gender = seq.gender.value if gender == "same" else gender
    conv = _converter(seq.model.value, target, seq.gender.value, target_gender, options)
    out, result = conv.convert_sequence(seq)
    summary = {"frames": float(out.num_frames), **result.summary()}
    arrays = sequence_arrays(
        out,
        meta={
            "conversion": {
                "summary": summary,
                "input": identity,
                "settings": settings,
                "source": os.fspath(path),
                "source_model": seq.model.value,
                "target_model": target,
                "source_gender": seq.gender.value,
                "target_gender": target_gender,
                "transfer": conv.transfer.path or "identity (one mesh)",
                "fitted_vertices": len(conv.fit_model.mask),
                "units": "metres",
            }
        },
    )
    arrays.update(
        conversion_vertex_error_mean=result.vertex_error_mean,
        conversion_vertex_error_max=result.vertex_error_max,
        conversion_joint_error=result.joint_error_mean,
        conversion_iterations=result.iterations.astype(np.int64),
    )
    with atomic_open(target_path) as fp:
        np.savez(fp, **arrays)  # type: ignore[arg-type]
    return summary


def _recorded(dest: Path) -> dict[str, Any] | None:
    """What a converted file records of its conversion (None: not a file amasskit converted)."""
    try:
        with open(dest, "rb") as raw, np.load(raw, allow_pickle=False) as npz:
            meta = json.loads(str(npz[META_KEY])) if META_KEY in npz.files else {}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    conversion = meta.get("conversion") if isinstance(meta, dict) else None
    return conversion if isinstance(conversion, dict) else None


def _recorded_summary(conversion: dict[str, Any]) -> dict[str, float] | None:
    """The summary a converted file records of itself (None for a file of an older amasskit)."""
    summary = conversion.get("summary")
    if not isinstance(summary, dict):
        return None
    return {str(k): float(v) for k, v in summary.items() if isinstance(v, (int, float))}


def convert_files(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    to: ModelType | str,
    model_dir: str | os.PathLike[str] | None = None,
    gender: str = "same",
    fit_betas: bool = True,
    device: str = "cpu",
    schedule: str = "accurate",
    workers: int | None = None,
    dask: str | None = None,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
    wait: float = 0.0,
) -> ConvertReport:
    """Convert motion files (or trees) to ``to`` under ``out`` (see the module docstring).

    Args:
        gender: ``same`` (each file's own) or ``neutral`` (the neutral target model).
        fit_betas: fit the target shape (one per sequence); False keeps it at zero.
        schedule: ``accurate`` or ``fast`` (see :data:`amasskit.convert.SCHEDULES`).
        workers: processes, each with its own converter (default: one per core, at most one per file); every file
            is fitted on one thread, so its arrays do not depend on the route. Each process holds the two models
            (a few hundred MB) and, while it fits a long sequence, up to about 1.5 GB (``Converter``'s ``chunk``).
        dask: a Dask scheduler address (``tcp://host:port``): convert the files on that cluster instead (inputs,
            outputs and the model folder on storage every worker shares; each worker builds its converter once).
        strict: stop at the first file that cannot be converted.
        wait: seconds to wait for another conversion into ``out`` to finish (0: refuse at once).

    A finished output is kept on a rerun when it records the same input (path, size, modification time) and the
    same settings; else it is converted again. Outputs go below ``out`` only; ``out`` is never read as input.

    Raises:
        InvalidArgumentError: an unknown gender choice or a target that is not a motion model.
        AmassKitError: the first problem, with ``strict``.
    """
    start = time.perf_counter()
    target = ModelType.parse(to)
    if target not in _SUFFIX:
        raise InvalidArgumentError(
            f"motion files are smplh or smplx; convert to smpl with convert_poses, not {to!r}"
        )
    from ._converter import SCHEDULES

    if schedule not in SCHEDULES:
        raise InvalidArgumentError(f"schedule is one of {sorted(SCHEDULES)}, not {schedule!r}")
    if gender not in ("same", "neutral"):
        raise InvalidArgumentError(f"gender is 'same' or 'neutral', not {gender!r}")
    root = user_path(out)
    options = {
        "model_dir": None if model_dir is None else str(user_path(model_dir)),
        "device": device,
        "fit_betas": fit_betas,
        **SCHEDULES[schedule],
    }
    root.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(root / LOCK_NAME, what=f"convert into {root}", wait=wait):
        for leftover in root.rglob(".*.tmp.npz"):  # a killed run's staging files (atomic_open's names)
            leftover.unlink(missing_ok=True)
        return _convert_into(
            root,
            inputs,
            target=target,
            gender=gender,
            fit_betas=fit_betas,
            schedule=schedule,
            options=options,
            workers=workers,
            dask=dask,
            strict=strict,
            progress=progress,
            start=start,
        )


#: the lock file of a conversion's output folder (one run into a folder at a time)
LOCK_NAME = ".amasskit-convert.lock"


def _convert_into(
    root: Path,
    inputs: Sequence[str | os.PathLike[str]],
    *,
    target: ModelType,
    gender: str,
    fit_betas: bool,
    schedule: str,
    options: dict[str, Any],
    workers: int | None,
    dask: str | None,
    strict: bool,
    progress: Callable[[int, int], None] | None,
    start: float,
) -> ConvertReport:
    """:func:`convert_files` under the output folder's lock."""
    # what an output depends on besides its input file: a rerun with other settings converts again
    settings = json.dumps(
        {
            "target": target.value,
            "gender": gender,
            "fit_betas": fit_betas,
            "schedule": schedule,
            "model_dir": options["model_dir"],
        },
        sort_keys=True,
    )
    earlier = _earlier_report(root / "convert_report.json")
    report = ConvertReport()
    todo = _outputs_to_write(root, inputs, target, settings, earlier, report)
    for name, error in report.problems:
        logger.warning("%s: %s", name, error)
        if strict:
            raise AmassKitError(f"convert stopped (--strict): {name}: {error}")
    done = 0

    def finished(path: Path, dest: Path, summary: dict[str, float] | None, error: str | None) -> None:
        nonlocal done
        done += 1
        if error is not None:
            report.problems.append((str(path), error))
            logger.warning("%s: %s", path, error)
            if strict:
                raise AmassKitError(f"convert stopped (--strict): {path}: {error}")
        else:
            assert summary is not None
            report.written.append(dest)
            report.files[str(dest)] = summary
        if progress is not None:
            progress(done, len(todo))

    if dask is not None and todo:
        run_on_dask(
            dask,
            _convert_one,
            [((str(p), str(d), target.value, gender, options, settings), (p, d)) for p, d in todo],
            lambda tag, summary: finished(*tag, summary, None),
            on_error=lambda tag, exc: finished(*tag, None, _problem(tag[0], exc)),
            what="files to convert",
        )
    elif (processes := min(len(todo), workers or os.cpu_count() or 1)) > 1:
        run_in_pool(
            _convert_one,
            [((str(p), str(d), target.value, gender, options, settings), (p, d)) for p, d in todo],
            lambda tag, summary: finished(*tag, summary, None),
            on_error=lambda tag, exc: finished(*tag, None, _problem(tag[0], exc)),
            processes=processes,
            what="files to convert",
        )
    else:
        for path, dest in todo:
            try:
                summary = _convert_one(str(path), str(dest), target.value, gender, options, settings)
            except Exception as exc:  # as above
                finished(path, dest, None, _problem(path, exc))
            else:
                finished(path, dest, summary, None)
    report = ConvertReport(
        report.written, report.skipped, report.problems, report.files, time.perf_counter() - start
    )
    written = [d for d in report.written if not d.is_relative_to(root)]
    if written:  # a worker on a cluster resolving a path its own way: never reported as done
        raise AmassKitError(f"results written outside {root}: {', '.join(map(str, written[:3]))}")
    _write_report(
        root, report, earlier, todo, target=target, gender=gender, fit_betas=fit_betas, schedule=schedule
    )
    return report


def _outputs_to_write(
    root: Path,
    inputs: Sequence[str | os.PathLike[str]],
    target: ModelType,
    settings: str,
    earlier: dict[str, Any],
    report: ConvertReport,
) -> list[tuple[Path, Path]]:
    """``(input, output)`` pairs still to convert: an output of this input and settings is kept (skipped, its
    earlier summary reported); two inputs of one output, or an output amasskit did not write, are problems, never
    replaced."""
    todo = []
    claimed: dict[Path, Path] = {}
    for path, rel in _inputs(inputs, output=root):
        dest = root / rel.parent / (sequence_name(rel.name) + _SUFFIX[target])
        if dest in claimed:  # two inputs of one relative name (two folders on one command line)
            report.problems.append(
                (
                    str(path),
                    f"OutputClash: {dest} is {claimed[dest]}'s output already; convert "
                    "the folders into separate outputs (-o)",
                )
            )
            continue
        claimed[dest] = path
        if dest.exists() or dest.is_symlink():
            recorded = _recorded(dest) if dest.is_file() and not dest.is_symlink() else None
            if recorded is None:
                report.problems.append(
                    (
                        str(path),
                        f"OutputExistsError: {dest} exists and is not a conversion "
                        "amasskit wrote: not replaced",
                    )
                )
                continue
            same = (
                recorded.get("source") == str(path)
                and recorded.get("input") == _identity(path)
                and recorded.get("settings") == settings
            )
            if same:
                report.skipped.append(dest)
                known = earlier["files"].get(str(dest)) or _recorded_summary(
                    recorded
                )  # a run killed before its report
                if known is not None:
                    report.files[str(dest)] = known
                continue
            logger.info(
                "%s: its input or the settings changed since it was converted: converting again", dest
            )
        todo.append((path, dest))
    return todo


def _write_report(
    root: Path,
    report: ConvertReport,
    earlier: dict[str, Any],
    todo: list[tuple[Path, Path]],
    *,
    target: ModelType,
    gender: str,
    fit_betas: bool,
    schedule: str,
) -> None:
    """``convert_report.json``, atomically: the union of every run's outcomes into this folder (a rerun after a
    kill, or of a finished conversion, keeps what earlier runs recorded; an input that failed before and converts
    now loses its problem)."""
    done_inputs = {str(p) for p, _ in todo} - {p for p, _ in report.problems}
    problems = [{"path": p, "error": e} for p, e in report.problems] + [
        q
        for q in earlier["problems"]
        if isinstance(q, dict) and q.get("path") not in done_inputs | {p for p, _ in report.problems}
    ]
    files = {k: v for k, v in earlier["files"].items() if Path(k).is_file()} | report.files
    record = {
        "target": target.value,
        "gender": gender,
        "fit_betas": fit_betas,
        "schedule": schedule,
        "written": len(report.written),
        "skipped": len(report.skipped),
        "problems": problems,
        "files": dict(sorted(files.items())),
        "seconds": report.seconds,
    }
    with atomic_open(root / "convert_report.json") as fp:
        fp.write((json.dumps(record, indent=1, sort_keys=True) + "\n").encode())


def _earlier_report(path: Path) -> dict[str, Any]:
    """The report an earlier run left in the output folder (empty when there is none, or it is not one)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"files": {}, "problems": []}
    if not isinstance(record, dict):
        return {"files": {}, "problems": []}
    files = record.get("files")
    problems = record.get("problems")
    return {
        "files": {str(k): v for k, v in files.items() if isinstance(v, dict)}
        if isinstance(files, dict)
        else {},
        "problems": problems if isinstance(problems, list) else [],
    }


def _problem(path: Path, exc: Exception) -> str:
    """``ErrorType: message`` for the report; a failure outside amasskit's error tree keeps its traceback in the
    debug log."""
    if not isinstance(exc, AmassKitError):
        logger.debug("converting %s failed", path, exc_info=exc)
    return f"{type(exc).__name__}: {exc}"


POSE_LIST_BLOCK_CHUNKS = 16
"""Chunks of poses a pose list passes to the converter at once (see :func:`convert_pose_list`)."""


def _read_pose_list(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """``poses (N, 52, 3)`` float64 (a body-only list padded with zero hands) and ``ids (N,)`` of a pose list.

    Raises:
        InvalidArgumentError: no ``poses``, another width, ids that do not fit, no poses.
        NonFiniteError: a pose that is not finite (named by index and id).
        MotionFileNotFoundError, CorruptFileError: no such file, or not a readable npz.
    """
    try:
        with (
            open(source, "rb") as raw,
            np.load(raw, allow_pickle=False) as npz,
        ):  # the file is closed whatever np.load does
            if "poses" not in npz:
                raise InvalidArgumentError(f"{source}: no 'poses' array (keys: {sorted(npz.files)})")
            poses = np.asarray(npz["poses"], dtype=np.float64)
            width = int(np.prod(poses.shape[1:])) if poses.ndim in (2, 3) else 0
            if width not in (22 * 3, 52 * 3) or (poses.ndim == 3 and poses.shape[2] != 3):
                raise InvalidArgumentError(
                    f"{source}: 'poses' has shape {poses.shape}; expected (N, 156) or (N, 52, 3) for SMPL+H, "
                    "(N, 66) or (N, 22, 3) for its body joints"
                )
            ids = np.asarray(npz["ids"]) if "ids" in npz else np.arange(len(poses))
            if ids.shape[:1] != poses.shape[:1] or ids.ndim != 1:
                raise InvalidArgumentError(f"{source}: 'ids' of shape {ids.shape} for {len(poses)} poses")
    except FileNotFoundError:
        raise MotionFileNotFoundError(source, "no such pose list") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        if isinstance(exc, InvalidArgumentError):
            raise
        raise CorruptFileError(source, f"is not a readable npz of poses ({exc})") from None
    if not len(poses):
        raise InvalidArgumentError(f"{source}: holds no poses")
    poses = poses.reshape(len(poses), -1, 3)
    if poses.shape[1] == 22:
        poses = np.concatenate([poses, np.zeros((len(poses), 30, 3))], axis=1)
    if not np.isfinite(poses).all():
        bad = int(np.flatnonzero(~np.isfinite(poses).all(axis=(1, 2)))[0])
        raise NonFiniteError(source, f"pose {bad} (id {ids[bad]}) is not finite: nothing converted")
    return poses, ids


def convert_pose_list(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    to: ModelType | str = ModelType.SMPLX,
    model_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    chunk: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    """Convert an npz of poses with the neutral models and zero shape (see the module docstring); writes ``out``
    (npz: ``poses (N, J_target, 3)``, ``ids``, ``trans``, ``betas``, the per-pose errors) and returns the summary.

    Every pose is fitted on its own, ``chunk`` poses evaluated at once (the converter's ``chunk``); the poses go
    through the converter in blocks of :data:`POSE_LIST_BLOCK_CHUNKS` chunks, so memory stays bounded (about 0.25 MB
    a pose of a block) whatever the list's length. Blocks are whole chunks, so the result is the same, to the bit,
    as one call of :meth:`Converter.convert_poses` over the whole list. ``progress(done, poses)`` is called before
    the first block and after each.

    Raises:
        InvalidArgumentError: no ``poses`` array, or one of another width than 52 or 22 joints.
        MotionFileNotFoundError, CorruptFileError: no such file, or not a readable npz.
    """
    source = user_path(source)
    poses, ids = _read_pose_list(source)
    if chunk < 1:
        raise InvalidArgumentError(f"chunk must be at least 1, got {chunk}")
    conv = _converter(
        "smplh",
        ModelType.parse(to).value,
        "neutral",
        "neutral",
        {
            "model_dir": None if model_dir is None else os.fspath(model_dir),
            "device": device,
            "fit_betas": False,
            "chunk": chunk,
        },
    )
    block = chunk * POSE_LIST_BLOCK_CHUNKS
    parts = []
    if progress is not None:
        progress(0, len(poses))
    for start in range(0, len(poses), block):
        parts.append(conv.convert_poses(poses[start : start + block]))
        if progress is not None:
            progress(min(start + block, len(poses)), len(poses))
    from ._converter import ConversionResult

    result = ConversionResult.concatenate(parts)
    with atomic_open(user_path(out)) as fp:
        arrays: dict[str, Any] = {
            "poses": result.rel_rotvec,
            "ids": ids,
            "trans": result.trans,
            "betas": result.betas,
            "vertex_error_mean": result.vertex_error_mean,
            "vertex_error_max": result.vertex_error_max,
            "iterations": result.iterations,
            META_KEY: np.array(
                json.dumps(
                    {"conversion": "pose list", "target_model": ModelType.parse(to).value, "units": "metres"}
                )
            ),
        }
        np.savez(fp, **arrays)
    return {"poses": float(len(poses)), **result.summary()}
