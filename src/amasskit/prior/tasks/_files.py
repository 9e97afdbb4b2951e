"""The tasks on files, as ``amasskit prior denoise | fit | evaluate`` run them: each reads its inputs, runs the task
and writes its output atomically, so that a library user calls what the commands call.

* :func:`body_kinematics`, :func:`load_field` - the body a fit moves (a model folder's SMPL+H, else the built-in
  skeleton) and the prior (a file, or ``none`` for the no-prior baseline).
* :func:`denoise_file` - a motion file denoised into another (``prior denoise``).
* :func:`fit_joints_file`, :func:`fit_keypoint_files` - bodies fitted to a ``.npy`` of 3D joints or to OpenPose
  files, written as one motion file (``prior fit``).
* :func:`held_out_files`, :func:`evaluate_priors` - the published protocol for several priors into one JSON report,
  resumable model by model (``prior evaluate``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from ..._util.atomic import atomic_open
from ..._util.paths import user_path
from ..._util.sampling import even_indices
from ...errors import InvalidArgumentError, KeypointFileError, OutputExistsError
from ...io import read_motion, read_openpose, save_motion
from ..field import load_prior
from ._body import NUM_JOINTS, BodyFit, Kinematics
from ._denoise import DenoiseSchedule, denoise_motion
from ._evaluate import EvaluationConfig, evaluate_prior, held_out_motion
from ._joints import fit_joints
from ._keypoints import KEYPOINT_PRIOR_WEIGHTS, fit_keypoints, fittable_keypoints, keypoint_stages

logger = logging.getLogger(__name__)

__all__ = [
    "PARTS_MARKER",
    "DenoisedFile",
    "FittedFile",
    "body_kinematics",
    "denoise_file",
    "evaluate_priors",
    "fit_joints_file",
    "fit_keypoint_files",
    "frame_window",
    "held_out_files",
    "load_field",
]

#: the file that marks a report's parts folder (``.<report>.parts``) as amasskit's own
PARTS_MARKER: Final[str] = ".amasskit-evaluate-parts"


def body_kinematics(
    model_dir: str | os.PathLike[str] | None, gender: str = "neutral", device: str | torch.device = "cpu"
) -> Kinematics:
    """The body a fit moves: the SMPL+H model of ``gender`` in ``model_dir``, else amasskit's built-in skeleton; on
    ``device``.

    Raises:
        InvalidArgumentError: a gender that is not neutral, male or female.
        BodyModelNotFoundError: no such model in ``model_dir``.
    """
    from ...sequence import Gender

    try:
        Gender.parse(gender)
    except ValueError:
        raise InvalidArgumentError(f"gender {gender!r}: need neutral, male or female") from None
    if model_dir is None:
        return Kinematics().to(device)
    from ...body import BodyModel

    return Kinematics(BodyModel.load("smplh", gender, model_dir=model_dir, device=device))


def load_field(model: str | os.PathLike[str], device: str | torch.device = "cpu") -> torch.nn.Module | None:
    """The prior in ``model`` (:func:`~amasskit.prior.load_prior`), or None for ``none`` (the no-prior baseline)."""
    return None if os.fspath(model) == "none" else load_prior(model, map_location=device)


def _distance_array(distance: np.ndarray) -> dict[str, Any]:
    """``prior_distance`` for an output file, where there was a prior (a fit without one has none to show)."""
    return {"prior_distance": distance} if np.isfinite(distance).all() else {}


def frame_window(text: str | None) -> slice | None:
    """``START:STOP`` (either may be left out) as a slice; None for all frames.

    Raises:
        InvalidArgumentError: anything else.
    """
    if text is None:
        return None
    start, _, stop = text.partition(":")
    if not (start or "0").isdigit() or not (stop or "0").isdigit():
        raise InvalidArgumentError(f"--frames {text}: need START:STOP")
    return slice(int(start or 0), int(stop) if stop else None)


@dataclass(frozen=True)
class DenoisedFile:
    """What :func:`denoise_file` wrote: the fit, and each frame's mean joint change ``(T,)`` (metres)."""

    out: Path
    fit: BodyFit
    joint_change: np.ndarray


def denoise_file(
    field: torch.nn.Module | None,
    motion: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    kinematics: Kinematics | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    frames: slice | None = None,
    schedule: DenoiseSchedule | None = None,
    warmup: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> DenoisedFile:
    """A motion file (AMASS, or HuMoR-style: :func:`~amasskit.io.read_motion`) denoised: its joints by
    ``kinematics`` (default: :func:`body_kinematics` of ``model_dir`` for the file's gender, on ``device``) are the
    observations and its parameters the start (:func:`denoise_motion`); written to ``out`` as a motion file with
    ``joint_change`` and, with a prior, ``prior_distance`` per frame.

    Raises:
        AmassFileError: an unreadable motion (named); InvalidArgumentError: a result that is not finite (nothing
            written), fewer than two frames.
    """
    data = read_motion(motion)
    if frames is not None:
        data.update({k: data[k][frames] for k in ("root_orient", "pose_body", "trans")})
    kin = kinematics if kinematics is not None else body_kinematics(model_dir, data["gender"], device)
    with torch.no_grad():
        params = [
            torch.as_tensor(data[k], dtype=kin.dtype, device=kin.device)
            for k in ("root_orient", "pose_body", "trans")
        ]
        betas = torch.as_tensor(data["betas"][: kin.num_betas], dtype=kin.dtype, device=kin.device)
        observed = kin(*params, betas if kin.num_betas else None).cpu().numpy()
    fit = denoise_motion(
        field,
        observed,
        kinematics=kin,
        init=data,
        schedule=schedule or DenoiseSchedule.posendf(),
        warmup=warmup,
        progress=progress,
    )
    moved = np.linalg.norm(fit.joints - observed, axis=-1).mean(-1)
    path = save_motion(
        out,
        pose_body=fit.pose_body,
        root_orient=fit.root_orient,
        trans=fit.trans,
        betas=fit.betas[0] if fit.betas.shape[-1] else None,
        fps=data["fps"],
        gender=data["gender"],
        joint_change=moved,
        made_from=str(motion),
        **_distance_array(fit.distance),
    )
    return DenoisedFile(path, fit, moved)


@dataclass(frozen=True)
class FittedFile:
    """What a fit wrote: the fit (leading shape ``(N, K)``: observations x hypotheses, best first), the files fitted
    (keypoints) and those skipped with why, and the observed joints' mean error (3D joints; metres)."""

    out: Path
    fit: BodyFit
    sources: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    joint_error: float | None = None


def _save_fit(out: str | os.PathLike[str], fit: BodyFit, made_from: Sequence[Any], **extra: Any) -> Path:
    """One motion file of the fit: a frame per observation and hypothesis (observation-major)."""
    N, K = fit.loss.shape
    flat = {
        k: getattr(fit, k).reshape(N * K, *getattr(fit, k).shape[2:])
        for k in ("pose_body", "root_orient", "trans")
    }
    return save_motion(
        out,
        **flat,
        betas=fit.betas[0, 0] if fit.betas.shape[-1] else None,
        observation=np.repeat(np.arange(N), K),
        hypothesis=np.tile(np.arange(K), N),
        fit_loss=fit.loss.reshape(-1),
        **_distance_array(fit.distance.reshape(-1)),
        joints=fit.joints.reshape(N * K, NUM_JOINTS, 3),
        made_from=", ".join(map(str, made_from[:3])) + (" ..." if len(made_from) > 3 else ""),
        **extra,
    )


def fit_joints_file(
    field: torch.nn.Module | None,
    joints: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    kinematics: Kinematics,
    hide: Sequence[int] = (),
    hypotheses: int = 1,
    seed: int = 0,
    prior_weight: float = 1.0,
    steps: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> FittedFile:
    """Bodies fitted to the 3D joints of a ``.npy`` ``(N, 22, 3)`` (NaN: missing; ``hide``: joints to treat as
    missing), written to ``out`` (:func:`fit_joints`).

    Raises:
        InvalidArgumentError: an unreadable file, another shape, hidden joints outside 0-21.
    """
    path = user_path(joints)
    try:
        observed = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"{path}: not a readable .npy ({exc})") from None
    if (
        observed.ndim < 2
        or observed.shape[-2:] != (NUM_JOINTS, 3)
        or not np.issubdtype(observed.dtype, np.number)
    ):
        raise InvalidArgumentError(f"{path}: joints {observed.dtype} {observed.shape}, need (N, 22, 3)")
    observed = np.array(observed, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
    if hide:
        if not all(0 <= j < NUM_JOINTS for j in hide):
            raise InvalidArgumentError(f"hidden joints {list(hide)}: joints are 0-21")
        observed[:, list(hide)] = np.nan
    schedule: dict[str, Any] = {} if steps is None else {"steps": steps}
    fit = fit_joints(
        field,
        observed,
        kinematics=kinematics,
        hypotheses=hypotheses,
        seed=seed,
        w_prior=prior_weight,
        progress=progress,
        **schedule,
    )
    seen = np.isfinite(observed).all(-1)
    error = np.linalg.norm(fit.joints[:, 0] - np.nan_to_num(observed), axis=-1)
    written = _save_fit(out, fit, [path])
    return FittedFile(written, fit, joint_error=float((error * seen).sum() / seen.sum()))


def fit_keypoint_files(
    field: torch.nn.Module | None,
    files: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    intrinsics: Any,
    kinematics: Kinematics,
    person: int | None = None,
    strict: bool = False,
    hypotheses: int = 1,
    seed: int = 0,
    prior_weight: float = 1.0,
    steps: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> FittedFile:
    """Bodies fitted to OpenPose files, one observation each (:func:`fit_keypoints`; its prior weights times
    ``prior_weight``; ``steps`` spread over its stages by :func:`keypoint_stages`), written to ``out`` with
    ``source`` (the files fitted) and ``camera_intrinsics``. A file that cannot be fitted (unreadable, too few
    confident keypoints) is skipped and listed, or stops the run with ``strict``.

    Raises:
        KeypointFileError: with ``strict``, the first file that cannot be fitted; InvalidArgumentError: none can.
    """
    usable, sources, skipped = [], [], []
    for file in files:
        path = user_path(file)
        try:
            keypoints = read_openpose(path, person=person)
            if not fittable_keypoints(keypoints):
                raise KeypointFileError(path, "fewer than 6 confident body keypoints: nothing to fit")
        except KeypointFileError as exc:
            if strict:
                raise
            logger.warning("skipped %s", exc)
            skipped.append((str(path), str(exc)))
            continue
        usable.append(keypoints)
        sources.append(path.name)
    if not usable:
        raise InvalidArgumentError(f"none of the {len(files)} keypoint files could be fitted")
    stages: dict[str, Any] = {} if steps is None else {"steps": keypoint_stages(steps)}
    fit = fit_keypoints(
        field,
        np.stack(usable),
        intrinsics=intrinsics,
        kinematics=kinematics,
        hypotheses=hypotheses,
        seed=seed,
        prior_weights=tuple(w * prior_weight for w in KEYPOINT_PRIOR_WEIGHTS),
        progress=progress,
        **stages,
    )
    written = _save_fit(
        out,
        fit,
        list(files),
        source=np.array(sources),
        camera_intrinsics=np.asarray(intrinsics, dtype=np.float64),
    )
    return FittedFile(written, fit, sources=sources, skipped=skipped)


def held_out_files(
    catalog: str | os.PathLike[str], *, split: str = "test", scheme: str = "amass-paper", files: int = 20
) -> list[Path]:
    """At most ``files`` motion files of a catalog's recorded split, spread evenly over it.

    Raises:
        CatalogError: no catalog, or no such scheme recorded; InvalidArgumentError: the split holds no file.
    """
    from ...catalog import Catalog

    with Catalog.open(catalog) as cat:
        everything = cat.paths(split=split, scheme=scheme)
    if not everything:
        raise InvalidArgumentError(f"split {split!r} of scheme {scheme!r} holds no file in {catalog}")
    return [everything[i] for i in even_indices(len(everything), files)]


def _parts_folder(out: Path) -> Path:
    """Where each finished model's report of ``out`` is kept until the whole is written.

    Raises:
        OutputExistsError: a folder of that name that amasskit did not make (its files are never touched).
    """
    parts = out.with_name(f".{out.name}.parts")
    if parts.exists() and not (parts / PARTS_MARKER).is_file():
        raise OutputExistsError(
            f"{parts} exists and amasskit did not make it: not used or removed; move it, or choose another -o"
        )
    return parts


def _remove_parts(parts: Path) -> None:
    """The parts folder's own files (a model's report is ``<16 hex>.json``), then the folder if nothing else is in
    it."""
    if not (parts / PARTS_MARKER).is_file():
        return
    for file in parts.iterdir():
        if re.fullmatch(r"[0-9a-f]{16}\.json", file.name) and file.is_file():
            file.unlink()
    (parts / PARTS_MARKER).unlink()
    if not any(parts.iterdir()):
        parts.rmdir()


def evaluate_priors(
    models: Sequence[str],
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    config: EvaluationConfig,
    model_dir: str | os.PathLike[str] | None = None,
    train_poses: str | os.PathLike[str] | None = None,
    data: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Each of ``models`` (files, or ``none`` for the no-prior baseline) through the published protocol
    (:func:`evaluate_prior`) on the held-out motion ``paths``, into one JSON report at ``out``, atomically.

    Resumable: each model's finished report is kept beside ``out`` (in ``.<out>.parts``, marked as amasskit's) under a
    key of everything it depends on (the config, the files, the device, the inputs, the model file's size and time),
    so a run interrupted after some models goes on with the next; the parts are removed once the whole is written.

    Args:
        train_poses: the priors' training pose set (dNN). data: a held-out training set (field fidelity).
        model_dir: body models (joints and v2v by the SMPL+H model; else the built-in skeleton).
        progress: called as ``progress(description, models done, models)``.

    Returns:
        The report: ``config``, ``inputs`` and ``reports`` (model -> its metrics).

    Raises:
        InvalidArgumentError: ``out`` a folder; OutputExistsError: a ``.<out>.parts`` folder amasskit did not make;
        CheckpointError, AmassFileError: a model or a motion that cannot be read (named).
    """
    from ..poses import PoseSet, TrainingData

    target = user_path(out)
    if target.is_dir():
        raise InvalidArgumentError(
            f"-o {target}: a folder; the report is a JSON file (e.g. {target / 'report.json'})"
        )
    names = [name if name == "none" else str(user_path(name)) for name in models]
    clips, reference = held_out_motion(list(paths), clip_frames=config.clip_frames, seed=config.seed)
    training = None if train_poses is None else np.asarray(PoseSet(Path(train_poses)).quat)
    fidelity = None if data is None else TrainingData(Path(data)).held_out(5000)
    kinematics = body_kinematics(model_dir, "neutral", device)
    parts = _parts_folder(target)
    inputs = json.dumps(
        {
            "config": config.__dict__,
            "files": [str(p) for p in paths],
            "device": str(device),
            "train_poses": str(train_poses),
            "data": str(data),
            "model_dir": str(model_dir),
        },
        sort_keys=True,
        default=str,
    )
    reports: dict[str, Any] = {}
    for done, name in enumerate(names):
        file = Path(name)
        stat = f"{file.resolve()}:{file.stat().st_size}:{file.stat().st_mtime_ns}" if file.is_file() else name
        cached = parts / f"{hashlib.sha256(f'{inputs}|{stat}'.encode()).hexdigest()[:16]}.json"
        if cached.is_file():
            reports[name] = json.loads(cached.read_text())
            continue
        field = load_field(name, device)

        def say(stage: str, name: str = name, done: int = done) -> None:
            if progress is not None:
                progress(f"{Path(name).name}: {stage}", done, len(names))

        reports[name] = evaluate_prior(
            field,
            reference=reference,
            clips=clips,
            training=training,
            fidelity=fidelity,
            kinematics=kinematics,
            config=config,
            progress=say,
        )
        parts.mkdir(parents=True, exist_ok=True)
        (parts / PARTS_MARKER).touch()
        with atomic_open(cached) as fp:
            fp.write(json.dumps(reports[name], default=float).encode())
        if progress is not None:
            progress(Path(name).name, done + 1, len(names))
    record = {
        "config": config.__dict__,
        "inputs": {
            "files": [str(p) for p in paths],
            "clips": len(clips),
            "reference_poses": len(reference),
            "body": "skeleton" if model_dir is None else str(model_dir),
        },
        "reports": reports,
    }
    with atomic_open(target) as fp:
        fp.write(json.dumps(record, indent=2, default=float).encode())
    _remove_parts(parts)  # the whole report is written: the parts are no longer needed
    return record
