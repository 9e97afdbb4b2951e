"""amasskit's main job on a built-in default that needs no AMASS download.

For now: make a synthetic AMASS tree, read every file back through the public reader (headers, then whole files),
and summarise what is there per sub-dataset. Later issues extend the demo with the catalog, the store, the loaders and
a preview video.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AmassKitError, NotMotionFileError
from .io import read, read_header
from .synth import SynthSummary, synth_tree

__all__ = ["DatasetStats", "DemoReport", "run_demo"]

logger = logging.getLogger(__name__)


@dataclass
class DatasetStats:
    """What one sub-dataset of the tree holds, as read back."""

    files: int = 0
    frames: int = 0
    seconds: float = 0.0
    fps: set[float] = field(default_factory=set)
    genders: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoReport:
    """The demo's findings.

    Attributes:
        synth: what the generator wrote.
        datasets: sub-dataset -> statistics read back from the files.
        skipped: non-motion files recognised and skipped (shape / stage-i files).
        problems: ``(path, "ErrorType: message")`` for files that failed to read (none expected).
        seconds_synth, seconds_headers, seconds_read: wall time of each stage.
    """

    synth: SynthSummary
    datasets: dict[str, DatasetStats]
    skipped: int
    problems: list[tuple[str, str]]
    seconds_synth: float
    seconds_headers: float
    seconds_read: float

    @property
    def files(self) -> int:
        return sum(d.files for d in self.datasets.values())

    @property
    def frames(self) -> int:
        return sum(d.frames for d in self.datasets.values())


def run_demo(
    out: str | os.PathLike[str],
    *,
    files: int = 38,
    seed: int = 0,
    release: str = "smplh",
    workers: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
) -> DemoReport:
    """Make a synthetic tree in ``out`` (replacing an earlier demo there) and read it all back.

    Args:
        out: folder for the synthetic tree.
        files: number of motion files (two per sub-dataset by default, with the release's real length distribution).
        seed: generator seed.
        release: ``smplh`` or ``smplx``.
        workers: processes for the generator.
        progress: called as ``progress(stage, done, total)`` while each stage runs.
    """
    root = Path(out)
    t0 = time.perf_counter()
    counter = {"frames": 0}

    def on_frames(n: int) -> None:
        counter["frames"] += n
        if progress is not None:
            progress("synth", counter["frames"], 0)

    synth = synth_tree(
        root,
        files=files,
        seed=seed,
        release=release,  # type: ignore[arg-type]
        workers=workers,
        overwrite=True,
        progress=on_frames,
    )
    t1 = time.perf_counter()

    paths = sorted(root.rglob("*.npz"))
    datasets: dict[str, DatasetStats] = {}
    problems: list[tuple[str, str]] = []
    skipped = 0
    motion = []
    for k, path in enumerate(paths):
        try:
            header = read_header(path)
        except NotMotionFileError:
            skipped += 1
            continue
        except AmassKitError as exc:
            problems.append((str(path), f"{type(exc).__name__}: {exc}"))
            continue
        finally:
            if progress is not None:
                progress("headers", k + 1, len(paths))
        motion.append(path)
        stats = datasets.setdefault(header.provenance.dataset or "?", DatasetStats())
        stats.files += 1
        stats.frames += header.num_frames
        stats.seconds += header.duration
        stats.fps.add(round(header.fps, 6))
        stats.genders[header.gender.value] = stats.genders.get(header.gender.value, 0) + 1
    t2 = time.perf_counter()

    for k, path in enumerate(motion):
        try:
            read(path)
        except AmassKitError as exc:
            problems.append((str(path), f"{type(exc).__name__}: {exc}"))
        if progress is not None:
            progress("read", k + 1, len(motion))
    t3 = time.perf_counter()
    for _path, message in problems:
        logger.warning("%s", message)
    return DemoReport(
        synth=synth,
        datasets=dict(sorted(datasets.items())),
        skipped=skipped,
        problems=problems,
        seconds_synth=t1 - t0,
        seconds_headers=t2 - t1,
        seconds_read=t3 - t2,
    )
