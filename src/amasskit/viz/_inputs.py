"""What can be rendered: an AMASS motion file, a sequence of a store, or joint positions; each becomes a Track."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import RenderError
from ..layouts import sequence_name
from ._render import PRIOR_DISTANCE, Track, View, frame_times, render_frames
from ._skeleton import skeleton_joints, skeleton_joints_rotmat, tree_for
from ._video import write_video

__all__ = ["load_track", "render"]

logger = logging.getLogger(__name__)


def load_track(
    spec: str | os.PathLike[str],
    *,
    model_dir: str | os.PathLike[str] | None = None,
    fps: float | None = None,
    label: str | None = None,
) -> Track:
    """A drawable track from ``spec``:

    * ``path/to/motion.npz``: an AMASS motion file (either release). With ``model_dir``, the body model's mesh
      (vertices computed as frames are drawn) and its own joints; else the built-in skeleton
      (:mod:`amasskit.viz._skeleton`).
    * ``path/to/store#N``: sequence ``N`` (default 0) of a prepared store; its ``joints`` field where it was prepared
      with a body model, else the built-in skeleton from its rotations (any stored representation).
    * ``path/to/joints.npy``: ``(T, J, 3)`` positions, Z-up, J one of 22, 24, 52, 55; ``fps`` (default 30).

    Raises:
        RenderError: an input that is none of these.
        AmassFileError: a motion file or store that cannot be read (its own typed error).
    """
    _check_fps(fps)
    track = _load_track(spec, model_dir=model_dir, fps=fps, label=label)
    bad = ~np.isfinite(track.joints).all(axis=(1, 2))
    if bad.any():
        raise RenderError(f"{spec}: joint positions are not finite at {int(bad.sum())} frames (first: frame "
                          f"{int(np.argmax(bad))}); nothing drawn")  # fmt: skip
    if len(track.joints) == 0:
        raise RenderError(f"{spec}: no frames to draw")
    return track


def _check_fps(fps: float | None) -> None:
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise RenderError(f"fps must be positive and finite, got {fps}")


def _load_track(
    spec: str | os.PathLike[str],
    *,
    model_dir: str | os.PathLike[str] | None,
    fps: float | None,
    label: str | None,
) -> Track:
    text = str(spec)
    base, _, number = text.partition("#")
    path = Path(base).expanduser()
    if (path / "manifest.json").is_file():
        if number and not number.lstrip("-").isdigit():
            raise RenderError(f"{text}: '#N' picks sequence N of a store; {number!r} is not a number")
        return _store_track(path, int(number or 0), label)
    if number and path.suffix == ".npz":
        return _projection_track(path, number, fps, label)
    if number:
        raise RenderError(
            f"{text}: '#N' picks a sequence of a store or a sample's steps, and {path} is neither"
        )
    if path.suffix == ".npz":
        return _motion_track(path, model_dir, fps, label)
    if path.suffix == ".npy":
        try:
            joints = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:  # missing, truncated, not .npy, or pickled objects
            raise RenderError(f"{path}: cannot read joints: {exc}") from None
        if joints.ndim != 3 or joints.shape[2] != 3:
            raise RenderError(f"{path}: joints must be (T, J, 3), got {joints.shape}")
        try:
            parents, names = tree_for(joints.shape[1])
        except ValueError as exc:
            raise RenderError(f"{path}: {exc}") from None
        return Track(joints.astype(np.float64), parents, names, float(fps or 30.0), label or path.stem,
                     info={"source": path.name})  # fmt: skip
    raise RenderError(f"{text}: not an AMASS .npz, a store folder (STORE#N) or a joints .npy")


def _motion_track(path: Path, model_dir: str | os.PathLike[str] | None, fps: float | None,
                  label: str | None) -> Track:  # fmt: skip
    from ..io import read

    seq = read(path)
    name = label or sequence_name(path.stem)
    info = {"sub-dataset": path.parent.parent.name, "subject": path.parent.name, "source": path.name,
            "gender": seq.gender.value, "model": seq.model.value}  # fmt: skip
    per_frame = _conversion_errors(path, seq.num_frames)
    if model_dir is not None:
        import torch

        from ..body import BodyModel
        from ._mesh import MeshSource

        model = BodyModel.for_sequence(seq, model_dir=model_dir, dtype=torch.float32)
        with torch.no_grad():
            joints = model.sequence_joints(seq).numpy().astype(np.float64)
        parents, names = tree_for(joints.shape[1])
        return Track(joints, parents, names, float(fps or seq.fps), name, mesh=MeshSource(model, seq), info=info,
                     per_frame=per_frame)  # fmt: skip
    joints = skeleton_joints(seq.root_orient, seq.pose_body, seq.trans)
    return Track(joints, *tree_for(24), float(fps or seq.fps), name, info=info, per_frame=per_frame)


#: per-frame arrays a motion file may carry, shown beside each frame: key -> (shown name, scale)
_PER_FRAME: dict[str, tuple[str, float]] = {
    "conversion_vertex_error_mean": ("conversion error (mean, mm)", 1000.0),  # amasskit convert
    "conversion_vertex_error_max": ("conversion error (max, mm)", 1000.0),
    "prior_distance": (PRIOR_DISTANCE, 1.0),  # amasskit prior sample / interpolate / denoise / fit
}


def _conversion_errors(path: Path, frames: int) -> dict[str, np.ndarray]:
    """A motion file's per-frame facts where present: a converted file's errors (millimetres), a prior's distance."""
    with open(path, "rb") as raw, np.load(raw, allow_pickle=False) as npz:
        return {
            name: np.asarray(npz[key], dtype=np.float64) * scale
            for key, (name, scale) in _PER_FRAME.items()
            if key in npz.files and npz[key].shape == (frames,)
        }


def _projection_track(path: Path, number: str, fps: float | None, label: str | None) -> Track:
    """``SAMPLES.npz#N``: the projection of sample ``N`` step by step, from ``amasskit prior sample --keep-steps``
    (``history_quat (S + 1, N, 21, 4)``, ``history_distance (S + 1, N)``), on the built-in skeleton."""
    from ..rotations import quat_to_rotvec

    if not number.isdigit():
        raise RenderError(
            f"{path}#{number}: '#N' picks sample N's projection steps; {number!r} is not a number"
        )
    try:
        with open(path, "rb") as raw, np.load(raw, allow_pickle=False) as npz:
            if "history_quat" not in npz.files:
                raise RenderError(f"{path}: no projection steps to show (write them with `amasskit prior sample "
                                  "--keep-steps`)")  # fmt: skip
            history = np.asarray(npz["history_quat"])
            distance = (
                np.asarray(npz["history_distance"], dtype=np.float64)
                if "history_distance" in npz.files
                else None
            )
    except (OSError, ValueError) as exc:
        raise RenderError(f"{path}: cannot read ({exc})") from None
    index = int(number)
    if history.ndim != 4 or history.shape[2:] != (21, 4) or not 0 <= index < history.shape[1]:
        raise RenderError(
            f"{path}: no sample {index} (steps of {history.shape[1] if history.ndim == 4 else 0} samples)"
        )
    # the steps a pose repeats after it stopped are dropped: the last frame is where it ended
    steps = history[:, index].astype(np.float64)
    moved = np.flatnonzero(np.abs(np.diff(steps, axis=0)).max(axis=(1, 2)) > 0)
    last = int(moved[-1]) + 2 if len(moved) else 1
    body = np.asarray(quat_to_rotvec(steps[:last]))
    root = np.tile([np.pi / 2, 0.0, 0.0], (last, 1))
    joints = skeleton_joints(root, body, np.zeros((last, 3)))
    per_frame = {} if distance is None else {PRIOR_DISTANCE: distance[:last, index]}
    return Track(joints, *tree_for(24), float(fps or 4.0), label or f"{path.stem} #{index}: projection",
                 info={"source": path.name, "steps": str(last - 1)}, per_frame=per_frame)  # fmt: skip


def _store_track(path: Path, index: int, label: str | None) -> Track:
    import torch

    from ..rotations import to_rotmat
    from ..store import Store

    store = Store(path)
    if not -len(store) <= index < len(store):
        raise RenderError(f"{path}: no sequence {index} (the store has {len(store)})")
    seq = store[index]
    meta = store.sequences[index % len(store)]
    name = label or f"{meta.get('name', index)} ({meta.get('augmentation', 'none')})"
    fps = float(store.fps[index])
    info = {k: str(meta[key]) for k, key in (("sub-dataset", "dataset"), ("subject", "subject"),
            ("source", "source"), ("augmentation", "augmentation")) if key in meta}  # fmt: skip
    info["store"] = f"{path.name}, sequence {index % len(store)}"
    if "joints" in seq:
        joints = np.asarray(seq["joints"], dtype=np.float64)
        return Track(joints, *tree_for(joints.shape[1]), fps, name, info=info)
    missing = [k for k in ("root_orient", "pose_body", "trans") if k not in seq]
    if missing:
        raise RenderError(f"{path}: nothing to draw: no joints field and no {missing}")
    representation = store.manifest.get("rotation", "rotvec")
    T = len(seq["trans"])
    parts = [np.asarray(seq["root_orient"])[:, None], np.asarray(seq["pose_body"])]
    stacked = torch.from_numpy(np.concatenate(parts, axis=1).astype(np.float64))
    local = to_rotmat(stacked, representation).numpy().reshape(T, 22, 3, 3)
    return Track(skeleton_joints_rotmat(local, seq["trans"]), *tree_for(24), fps, name, info=info)


def render(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    model_dir: str | os.PathLike[str] | None = None,
    frames: tuple[int | None, int | None] | None = None,
    fps: float | None = None,
    labels: Sequence[str] | None = None,
    view: View | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render ``inputs`` (see :func:`load_track`) side by side (or overlaid: ``view.overlay``) to ``output``
    (``.mp4`` or ``.gif``).

    Args:
        frames: ``(start, stop)`` frames of the first input (its frame rate sets the time span for all).
        fps: the video's frame rate (default: the first input's, at most 30 for a GIF, 60 for an MP4).
        labels: one per input (default: file or sequence names).
        progress: ``progress(done, total)`` per frame written.

    Returns:
        The written file.
    """
    if not inputs:
        raise RenderError("nothing to render")
    _check_fps(fps)
    names = list(labels) if labels is not None else [None] * len(inputs)
    if len(names) != len(inputs):
        raise RenderError(f"{len(names)} labels for {len(inputs)} inputs")
    tracks = [
        load_track(spec, model_dir=model_dir, label=name) for spec, name in zip(inputs, names, strict=True)
    ]
    first = tracks[0]
    start_frame, stop_frame = frames or (None, None)
    length = len(first.joints)
    lo = 0 if start_frame is None else start_frame % length if start_frame < 0 else start_frame
    hi = length if stop_frame is None else stop_frame % length if stop_frame < 0 else min(stop_frame, length)
    if stop_frame is not None and stop_frame > length:
        logger.warning("frames %s:%d: %s has %d frames; rendering %d:%d", "" if start_frame is None else start_frame,
                       stop_frame, first.label, length, lo, hi)  # fmt: skip
    if (start_frame is not None and start_frame < -length) or lo >= hi:
        raise RenderError(
            f"frames {'' if start_frame is None else start_frame}:{'' if stop_frame is None else stop_frame} "
            f"select nothing of {first.label} ({length} frames)"
        )
    start_frame, stop_frame = (
        lo,
        (None if stop_frame is None else hi),
    )  # None: to the end of the longest input
    start = (start_frame or 0) / first.fps
    stop = None if stop_frame is None else stop_frame / first.fps
    cap = 30.0 if Path(output).suffix.lower() == ".gif" else 60.0
    out_fps = float(fps) if fps else min(first.fps, cap)
    times = frame_times(tracks, out_fps, start=start, stop=stop)
    total = len(times)
    logger.info("rendering %d frames at %g fps from %d input(s)", total, out_fps, len(tracks))
    return write_video(render_frames(tracks, times, view), output, out_fps,
                       progress=None if progress is None else (lambda n: progress(n, total)))  # fmt: skip
