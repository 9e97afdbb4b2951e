"""Writing frames as MP4 (through an ffmpeg binary: the system's first, then imageio-ffmpeg's) or GIF (Pillow,
always available). Both write beside the target and rename into place, so the file is whole or absent."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from .._util.atomic import atomic_path
from ..errors import RenderError

__all__ = ["find_ffmpeg", "write_video"]

logger = logging.getLogger(__name__)


def find_ffmpeg() -> str | None:
    """The ffmpeg to encode MP4 with: ``ffmpeg`` on ``PATH`` first, then the binary of the ``imageio-ffmpeg``
    package (extra ``amasskit[render]``); None when there is neither."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return None


def write_video(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike[str],
    fps: float,
    *,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write ``frames`` (each ``(H, W, 3)`` uint8, all the same size) to ``path`` (``.mp4`` or ``.gif``).

    ``progress(n)`` is called after each frame. GIF frame times are whole hundredths of a second (a GIF limit), so
    30 fps plays at 1/0.03 s.

    Raises:
        RenderError: an unknown suffix, no frames, or no ffmpeg for an MP4 (write a ``.gif`` instead, or install
            ffmpeg or ``amasskit[render]``), or ffmpeg failing.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise RenderError(f"{target}: write .mp4 or .gif, not {suffix or 'no suffix'!r}")
    with atomic_path(target) as partial:
        if suffix == ".gif":
            _gif(frames, partial, fps, progress)
        else:
            _mp4(frames, partial, fps, progress)
    return target


def _gif(frames: Iterable[np.ndarray], path: Path, fps: float,
         progress: Callable[[int], None] | None) -> None:  # fmt: skip
    images = []
    for n, frame in enumerate(frames, 1):
        # one adaptive palette per frame; the drawings use few colours, so this is close to lossless (fast octree:
        # a tenth of median cut's time, measured mean error 0.9 against 0.6 of 255 on a skeleton frame)
        images.append(Image.fromarray(frame).quantize(colors=128, method=Image.Quantize.FASTOCTREE))
        if progress is not None:
            progress(n)
    if not images:
        raise RenderError(f"{path.name}: no frames to write")
    duration = max(20, round(100 / fps) * 10)  # milliseconds, whole hundredths (browsers treat < 2 as 10)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)


def _mp4(frames: Iterable[np.ndarray], path: Path, fps: float,
         progress: Callable[[int], None] | None) -> None:  # fmt: skip
    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        raise RenderError(
            "no MP4 encoder: install ffmpeg (e.g. apt install ffmpeg) or amasskit[render] (imageio-ffmpeg), "
            "or write a .gif"
        )
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise RenderError(f"{path.name}: no frames to write")
    H, W = first.shape[:2]
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{W}x{H}", "-r", f"{fps:g}", "-i", "-",
               "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",  # yuv420p needs even sizes
               "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "20", "-movflags", "+faststart", "-f", "mp4",
               str(path)]  # fmt: skip
    logger.debug("encoding with %s", " ".join(command))
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None
    n = 0
    try:
        for frame in _chain(first, iterator):
            if frame.shape[:2] != (H, W):
                raise RenderError(f"{path.name}: frame {n} is {frame.shape[:2]}, the first was {(H, W)}")
            process.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
            n += 1
            if progress is not None:
                progress(n)
        process.stdin.close()
    except BrokenPipeError:
        pass
    except BaseException:
        process.kill()
        _finish(process)
        raise
    stderr = _finish(process)
    if process.returncode != 0:
        raise RenderError(f"ffmpeg failed writing {path.name}: {stderr.strip()[-2000:]}")


def _finish(process: subprocess.Popen[bytes]) -> str:
    """Close ffmpeg's pipes, wait for it, and return what it printed (errors only: ``-loglevel error``)."""
    if process.stdin is not None and not process.stdin.closed:
        with contextlib.suppress(BrokenPipeError):  # ffmpeg gone already: its stderr says why
            process.stdin.close()
    err = process.stderr.read() if process.stderr is not None else b""
    if process.stderr is not None:
        process.stderr.close()
    process.wait()
    return err.decode(errors="replace")


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    yield first
    yield from rest
