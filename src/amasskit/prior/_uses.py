"""Pose priors at work: loading any model, generating poses, interpolating between two on the manifold.

* :func:`load_prior` - a model trained by amasskit or a released Pose-NDF/NRDF checkpoint, whichever the file is.
* :func:`sample_poses` - plausible poses: random starts (Haar, or noisy copies of the identity, or poses given)
  projected onto the field's zero set (``amasskit prior sample``).
* :func:`interpolate_poses` - a path from pose A to pose B that stays on the manifold: a step of ``step_size`` of
  the way toward B (per-joint slerp), projected, repeated until B is reached (``amasskit prior interpolate``).
* :func:`read_pose` - a pose from ``FILE#frame`` (an AMASS motion file) or a ``.npy`` of 21 rotation vectors or
  quaternions.
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._util.atomic import atomic_open
from .._util.hardware import check_memory
from .._util.paths import user_path
from ..errors import CheckpointError, InvalidArgumentError
from ..rotations import quat_canonical, quat_geodesic, quat_slerp, quat_to_rotvec, rotvec_to_quat
from ._model import DistanceField, DistanceFieldConfig
from ._official import load_official
from ._project import Projection, project, random_poses
from ._train import load_model

logger = logging.getLogger(__name__)

__all__ = [
    "interpolate_poses",
    "load_prior",
    "read_motion",
    "read_pose",
    "sample_poses",
    "save_motion",
    "save_poses",
]

STARTS = ("haar", "noisy-identity")


def load_prior(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> DistanceField:
    """The distance field in ``path``: an amasskit model (``model.pt``), else a released checkpoint (with its
    ``config.yaml`` beside it or one folder up).

    Raises:
        CheckpointError: neither (the message says what each reader found).
    """
    try:
        return load_model(path, map_location=map_location)
    except CheckpointError as ours:
        if "not an amasskit prior model" not in str(ours):
            raise
        try:
            return load_official(path, map_location=map_location)
        except CheckpointError as theirs:
            raise CheckpointError(
                path, f"neither an amasskit model nor a released checkpoint ({theirs.reason})"
            ) from None


def sample_poses(
    model: torch.nn.Module,
    count: int,
    *,
    start: str | np.ndarray | torch.Tensor = "haar",
    seed: int = 0,
    noise: float = 0.5,
    tol: float | None = None,
    max_steps: int = 100,
    method: str = "rdfgrad",
    keep_steps: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Projection:
    """``count`` poses projected onto the field's zero set from seeded starts.

    Args:
        start: ``haar`` (uniformly random rotations), ``noisy-identity`` (each joint the identity turned by a
            Gaussian rotation vector of ``noise`` radians a component) or ``(N, J, 4)`` poses (the first ``count``).
        tol: stop a pose under this distance (default: 1e-3 a joint, in the model's units).
        max_steps, method, keep_steps, progress: as :func:`~amasskit.prior.project`.

    Raises:
        InvalidArgumentError: an unknown start or a start array of the wrong shape.
    """
    config = _config(model)
    J = config.joints
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidArgumentError(f"count must be an integer >= 1, got {count!r}")
    # every pose's activations (kept for the gradient) through the network at once: refused before allocating
    per_pose = 4 * 3 * (J * (config.hidden + config.feature + 16) + sum(config.dims))
    check_memory(count * per_pose, f"projecting {count:,} poses at once")
    generator = torch.Generator().manual_seed(seed)
    if isinstance(start, str):
        if start == "haar":
            quat = random_poses(count, joints=J, generator=generator)
        elif start == "noisy-identity":
            rotvec = torch.randn(count, J, 3, generator=generator, dtype=torch.float64) * noise
            quat = torch.as_tensor(np.asarray(rotvec_to_quat(rotvec.numpy()), dtype=np.float32))
        else:
            raise InvalidArgumentError(f"start must be one of {', '.join(STARTS)} or poses, got {start!r}")
    else:
        given = start.detach().cpu().numpy() if isinstance(start, torch.Tensor) else np.asarray(start)
        if given.ndim != 3 or given.shape[1:] != (J, 4) or not np.issubdtype(given.dtype, np.number):
            raise InvalidArgumentError(
                f"start poses must be (N, {J}, 4) quaternions, got {given.dtype} {tuple(given.shape)}"
            )
        quat = torch.as_tensor(given[:count].astype(np.float32))
        if not torch.isfinite(quat).all():
            raise InvalidArgumentError("start poses hold values that are not finite")
    weight = next(model.parameters(), None)  # a field without parameters (ExactField) stays where it is
    return project(model, quat if weight is None else quat.to(weight.device), method=method, max_steps=max_steps, tol=_default_tol(model, tol),
                   keep_steps=keep_steps, progress=progress)  # fmt: skip


def _config(model: torch.nn.Module) -> DistanceFieldConfig:
    config = getattr(model, "config", None)
    if not isinstance(config, DistanceFieldConfig):
        raise InvalidArgumentError(
            "the model must be a DistanceField (or carry its config, as ExactField does)"
        )
    return config


def _default_tol(model: torch.nn.Module, tol: float | None) -> float:
    if tol is not None:
        return tol
    config = _config(model)
    return 1e-3 * (config.joints if config.reduction == "sum" else 1)


def interpolate_poses(
    model: torch.nn.Module,
    a: np.ndarray,
    b: np.ndarray,
    *,
    step_size: float = 0.1,
    max_steps: int = 200,
    tol: float | None = None,
    project_steps: int = 20,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A path on the manifold from pose ``a (J, 4)`` to pose ``b (J, 4)``: repeatedly a per-joint slerp
    ``step_size`` of the way toward ``b``, then a projection (at most ``project_steps`` evaluations); the path ends
    at ``b`` once every joint is within a degree of it, once a projected step no longer brings it nearer (``b``
    itself off the field's zero set), or after ``max_steps``; ``progress(step, max_steps)`` is called after each
    step (and with ``max_steps`` at the end).

    Returns:
        ``path (K, J, 4)`` float32 XYZW (``path[0] = a``, ``path[-1] = b``) and ``distance (K,)`` by the field.

    Raises:
        InvalidArgumentError: poses of the wrong shape, a step size outside ``(0, 1]``.
    """
    J = _config(model).joints
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != (J, 4) or b.shape != (J, 4):
        raise InvalidArgumentError(f"poses must be ({J}, 4) quaternions, got {a.shape} and {b.shape}")
    if not 0 < step_size <= 1:
        raise InvalidArgumentError(f"step_size must be in (0, 1], got {step_size}")
    a = np.asarray(quat_canonical(a / np.linalg.norm(a, axis=-1, keepdims=True)))
    b = np.asarray(quat_canonical(b / np.linalg.norm(b, axis=-1, keepdims=True)))
    tol = _default_tol(model, tol)
    path = [a]
    close = np.deg2rad(1.0)  # every joint within a degree of b: the next step is b itself
    total = remaining = float(np.sum(quat_geodesic(a, b)))
    stopped = "max_steps"
    for _ in range(max_steps):
        x = path[-1]
        if np.max(quat_geodesic(x, b)) < close:
            stopped = ""
            break
        moved = torch.as_tensor(np.asarray(quat_slerp(x, b, step_size))[None], dtype=torch.float32)
        nxt = project(model, moved, tol=tol, max_steps=project_steps).quat[0].detach().cpu().double().numpy()
        left = float(np.sum(quat_geodesic(nxt, b)))
        if left >= remaining:
            stopped = "pulled back"  # the projection undoes the step: b is off the field's zero set; go to b
            break
        path.append(nxt)
        remaining = left
        if progress is not None:
            progress(len(path) - 1, max_steps)
    if progress is not None:
        progress(max_steps, max_steps)
    if stopped:
        why = (f"the {max_steps} steps (max_steps) ran out" if stopped == "max_steps" else
               "a projected step no longer brought the path nearer B (B lies off the prior's zero set, or the prior "
               "is poor)")  # fmt: skip
        logger.warning("interpolation: %s; the path jumps straight to B from pose %d, %.0f%% of the way short "
                       "(%.3g of %.3g rad left)", why, len(path) - 1, 100 * remaining / max(total, 1e-12),
                       remaining, total)  # fmt: skip
    path.append(b)
    quats = np.stack(path).astype(np.float32)
    with torch.no_grad():
        distance = model(torch.as_tensor(quats)).detach().cpu().numpy()
    return quats, distance


def read_pose(spec: str | os.PathLike[str], *, joints: int = 21) -> np.ndarray:
    """A pose ``(joints, 4)`` XYZW from ``FILE#frame`` or ``FILE``.

    ``FILE`` is an AMASS motion file (``.npz``: its body pose at ``frame``, the first frame when no ``#frame`` is
    given; with 51 joints, the hands too) or a ``.npy`` file of ``(joints, 3)`` rotation vectors or ``(joints, 4)``
    quaternions.

    Raises:
        InvalidArgumentError: a frame that is not a number or outside the file, a ``.npy`` file that is unreadable,
            of another shape or not finite (naming the file).
        AmassFileError: a motion file that is missing, unreadable or not a motion file (amasskit's file errors, each
            naming the file).
    """
    text = os.fspath(spec)
    path_text, hash_sign, frame = text.rpartition("#")
    if not hash_sign or (not frame.isdigit() and user_path(text).exists()):  # a '#' in the file's own name
        path_text, hash_sign, frame = text, "", ""
    path = user_path(path_text)
    if hash_sign and not frame.isdigit():
        raise InvalidArgumentError(f"{text}: the frame after '#' must be a number >= 0, got {frame!r}")
    if path.suffix.lower() == ".npy":
        if hash_sign:
            raise InvalidArgumentError(f"{text}: a .npy file holds one pose; '#frame' is for motion files")
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise InvalidArgumentError(f"{path}: not a readable .npy pose ({exc})") from None
        if array.shape not in ((joints, 3), (joints, 4)) or not np.issubdtype(array.dtype, np.number):
            raise InvalidArgumentError(
                f"{path}: a pose of {array.shape} {array.dtype}; need ({joints}, 3) rotation vectors or "
                f"({joints}, 4) XYZW quaternions"
            )
        array = np.asarray(array, dtype=np.float64)
        if not np.isfinite(array).all():
            raise InvalidArgumentError(f"{path}: the pose holds values that are not finite")
        if array.shape == (joints, 4):
            norm = np.linalg.norm(array, axis=-1, keepdims=True)
            if not (norm > 1e-8).all():
                raise InvalidArgumentError(f"{path}: a quaternion of zero length")
            return np.asarray(quat_canonical(array / norm))
        rotvec = array
    else:
        from ..io import read

        sequence = read(path)
        index = int(frame) if hash_sign else 0
        if not 0 <= index < sequence.num_frames:
            raise InvalidArgumentError(f"{path}: frame {index} is outside its {sequence.num_frames} frames")
        rotvec = np.asarray(sequence.pose_body[index], dtype=np.float64).reshape(-1, 3)
        if joints == 51 and sequence.pose_hand is not None:
            rotvec = np.concatenate([rotvec, np.asarray(sequence.pose_hand[index]).reshape(-1, 3)])
        if rotvec.shape != (joints, 3):
            raise InvalidArgumentError(
                f"{path}: a pose of {rotvec.shape[0]} joints, the prior needs {joints}"
            )
    return np.asarray(quat_canonical(rotvec_to_quat(rotvec)))


#: the root orientation of saved poses: the body upright in AMASS's Z-up world (the models are Y-up)
UPRIGHT: np.ndarray = np.array([np.pi / 2, 0.0, 0.0])


def save_motion(
    path: str | os.PathLike[str],
    *,
    pose_body: np.ndarray,
    root_orient: np.ndarray | None = None,
    trans: np.ndarray | None = None,
    betas: np.ndarray | None = None,
    fps: float = 30.0,
    gender: str = "neutral",
    made_from: str | None = None,
    **arrays: Any,
) -> Path:
    """A motion file (the SMPL+H release layout, so ``amasskit view``, ``render`` and :func:`amasskit.io.read` take
    it) of ``pose_body (T, 21, 3)`` rotation vectors, with ``root_orient (T, 3)`` (default: upright in a Z-up
    world), ``trans (T, 3)`` (default 0), ``betas`` (default 16 zeros) and any other per-file arrays, atomically.
    A ``prior_distance (T,)`` array is shown by the viewer beside each frame. ``made_from`` names the inputs in the
    error a result that is not finite raises.

    Raises:
        InvalidArgumentError: a result that is not finite (nothing written), or ``path`` a folder."""
    from ..io import sequence_arrays
    from ..sequence import Gender, Sequence

    body = np.asarray(pose_body, dtype=np.float64).reshape(-1, 21, 3)
    T = len(body)
    root = np.broadcast_to(UPRIGHT if root_orient is None else np.asarray(root_orient, np.float64), (T, 3))
    shape = np.zeros(16) if betas is None else np.asarray(betas, dtype=np.float64).reshape(-1)
    seq = Sequence(root_orient=np.ascontiguousarray(root, dtype=np.float32), pose_body=body.astype(np.float32),
                   pose_hand=np.zeros((T, 30, 3), np.float32),
                   trans=np.zeros((T, 3), np.float32) if trans is None else np.asarray(trans, np.float32).reshape(T, 3),
                   betas=shape.astype(np.float32), gender=Gender.parse(gender), fps=fps)  # fmt: skip
    payload: dict[str, Any] = sequence_arrays(seq)
    payload.update({k: np.asarray(v) for k, v in arrays.items()})
    return _write_npz(path, payload, made_from=made_from)


def _write_npz(
    path: str | os.PathLike[str], payload: dict[str, Any], *, made_from: str | None = None
) -> Path:
    """``payload`` as one uncompressed npz at ``path``, atomically (whole or absent).

    Raises:
        InvalidArgumentError: ``path`` is a folder, or a result holds values that are not finite (from inputs or
            settings out of range): nothing is written.
    """
    target = user_path(path)
    if target.is_dir():
        raise InvalidArgumentError(
            f"{target}: a folder; the output is an .npz file (e.g. {target / 'out.npz'})"
        )
    for key, value in payload.items():
        array = np.asarray(value)
        if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
            where = f"made from {made_from}" if made_from else "from inputs"
            raise InvalidArgumentError(f"{target}: not written: the result's {key} holds values that are not finite "
                                       f"(NaN or inf), {where} or settings out of range")  # fmt: skip
    path = target
    buffer = io.BytesIO()
    np.savez(buffer, **payload)
    with atomic_open(path) as fp:
        fp.write(buffer.getvalue())
    return Path(path)


def save_poses(
    path: str | os.PathLike[str], quat: np.ndarray, *, made_from: str | None = None, **arrays: Any
) -> Path:
    """Poses ``quat (T, 21, 4)`` as a motion file of ``T`` frames (:func:`save_motion`, upright, at the origin) with
    ``quat`` itself and any other arrays; other joint counts (51: with the hands) as ``quat`` and ``rotvec`` only."""
    quat = np.asarray(quat, dtype=np.float32)
    rotvec = np.asarray(quat_to_rotvec(quat.astype(np.float64)), dtype=np.float32)
    if quat.ndim == 3 and quat.shape[1] == 21:
        return save_motion(path, pose_body=rotvec, quat=quat, made_from=made_from, **arrays)
    payload: dict[str, Any] = {
        "quat": quat,
        "rotvec": rotvec.reshape(*quat.shape[:-2], -1),
        **{k: np.asarray(v) for k, v in arrays.items()},
    }
    return _write_npz(path, payload, made_from=made_from)


def read_motion(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The body of a motion file: an AMASS file (either release) or a HuMoR-style npz (``root_orient (T, 3)``,
    ``pose_body (T, 63)``, ``trans (T, 3)``, ``betas``, optional ``fps``/``gender``).

    Returns:
        ``root_orient (T, 3)``, ``pose_body (T, 21, 3)``, ``trans (T, 3)``, ``betas (B,)`` float64; ``fps``, ``gender``.

    Raises:
        AmassFileError: the file cannot be read as either (a typed error naming it: missing keys, wrong shapes - a
            pose of another joint count - or values that are not finite).
    """
    from ..errors import (
        ArrayShapeError,
        EmptySequenceError,
        InvalidValueError,
        MissingKeyError,
        NonFiniteError,
    )
    from ..io import read

    try:
        seq = read(path)
    except MissingKeyError as exc:
        with open(path, "rb") as raw, np.load(raw, allow_pickle=False) as npz:
            if not {"root_orient", "pose_body"} <= set(npz.files):
                raise exc from None
            arrays = {}
            for key in ("root_orient", "pose_body", "trans", "betas"):
                if key in npz.files:
                    try:
                        arrays[key] = np.asarray(npz[key], dtype=np.float64)
                    except (TypeError, ValueError):
                        raise ArrayShapeError(path, f"{key} holds {npz[key].dtype}, not numbers") from None
            try:
                fps = float(npz["fps"]) if "fps" in npz.files else 30.0
            except (TypeError, ValueError):
                raise InvalidValueError(path, f"fps {npz['fps']!r} is not a number") from None
            gender = str(npz["gender"]) if "gender" in npz.files else "neutral"
        if not (math.isfinite(fps) and fps > 0):
            raise InvalidValueError(path, f"fps {fps} is not a frame rate (a number > 0)") from None
        T = len(arrays["root_orient"]) if arrays["root_orient"].ndim else 0
        if T == 0:
            raise EmptySequenceError(path, "holds no frames") from None
        body = arrays["pose_body"]
        if arrays["root_orient"].shape != (T, 3) or body.size != T * 63:
            raise ArrayShapeError(path, f"root_orient {arrays['root_orient'].shape} and pose_body {body.shape}: "
                                        "need (T, 3) and (T, 63) (21 body joints)") from None  # fmt: skip
        trans = arrays.get("trans", np.zeros((T, 3)))
        if trans.shape != (T, 3):
            raise ArrayShapeError(path, f"trans {trans.shape}, need ({T}, 3)") from None
        out: dict[str, Any] = {"root_orient": arrays["root_orient"], "pose_body": body.reshape(T, 21, 3), "trans": trans,
               "betas": arrays.get("betas", np.zeros(16)).reshape(-1)[:16], "fps": fps, "gender": gender}  # fmt: skip
        for key in ("root_orient", "pose_body", "trans", "betas"):
            if not np.isfinite(out[key]).all():
                raise NonFiniteError(path, f"{key} holds values that are not finite") from None
        return out
    return {"root_orient": seq.root_orient.astype(np.float64), "pose_body": seq.pose_body.astype(np.float64),
            "trans": seq.trans.astype(np.float64), "betas": seq.betas.astype(np.float64), "fps": seq.fps,
            "gender": seq.gender.value}  # fmt: skip
