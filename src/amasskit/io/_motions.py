"""Motion files the pose-prior tasks read and write: a pose from ``FILE#frame``, the body of an AMASS or a
HuMoR-style file, and results saved as release-layout motion files (so ``amasskit view``, ``render`` and :func:`read`
take them), atomically and only when finite."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._util.atomic import atomic_open
from .._util.paths import user_path
from ..errors import InvalidArgumentError
from ..rotations import quat_canonical, quat_to_rotvec, rotvec_to_quat
from ..sequence import Gender, Sequence
from ._reader import read
from ._writer import sequence_arrays

__all__ = ["UPRIGHT", "read_motion", "read_pose", "save_motion", "save_poses", "write_npz"]


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

    body = np.asarray(pose_body, dtype=np.float64).reshape(-1, 21, 3)
    T = len(body)
    root = np.broadcast_to(UPRIGHT if root_orient is None else np.asarray(root_orient, np.float64), (T, 3))
    shape = np.zeros(16) if betas is None else np.asarray(betas, dtype=np.float64).reshape(-1)
    seq = Sequence(
        root_orient=np.ascontiguousarray(root, dtype=np.float32),
        pose_body=body.astype(np.float32),
        pose_hand=np.zeros((T, 30, 3), np.float32),
        trans=np.zeros((T, 3), np.float32) if trans is None else np.asarray(trans, np.float32).reshape(T, 3),
        betas=shape.astype(np.float32),
        gender=Gender.parse(gender),
        fps=fps,
    )
    payload: dict[str, Any] = sequence_arrays(seq)
    payload.update({k: np.asarray(v) for k, v in arrays.items()})
    return write_npz(path, payload, made_from=made_from)


def write_npz(path: str | os.PathLike[str], payload: dict[str, Any], *, made_from: str | None = None) -> Path:
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
            raise InvalidArgumentError(
                f"{target}: not written: the result's {key} holds values that are not finite "
                f"(NaN or inf), {where} or settings out of range"
            )
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
    return write_npz(path, payload, made_from=made_from)


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
            raise ArrayShapeError(
                path,
                f"root_orient {arrays['root_orient'].shape} and pose_body {body.shape}: "
                "need (T, 3) and (T, 63) (21 body joints)",
            ) from None
        trans = arrays.get("trans", np.zeros((T, 3)))
        if trans.shape != (T, 3):
            raise ArrayShapeError(path, f"trans {trans.shape}, need ({T}, 3)") from None
        out: dict[str, Any] = {
            "root_orient": arrays["root_orient"],
            "pose_body": body.reshape(T, 21, 3),
            "trans": trans,
            "betas": arrays.get("betas", np.zeros(16)).reshape(-1)[:16],
            "fps": fps,
            "gender": gender,
        }
        for key in ("root_orient", "pose_body", "trans", "betas"):
            if not np.isfinite(out[key]).all():
                raise NonFiniteError(path, f"{key} holds values that are not finite") from None
        return out
    return {
        "root_orient": seq.root_orient.astype(np.float64),
        "pose_body": seq.pose_body.astype(np.float64),
        "trans": seq.trans.astype(np.float64),
        "betas": seq.betas.astype(np.float64),
        "fps": seq.fps,
        "gender": seq.gender.value,
    }
