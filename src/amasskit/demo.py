"""amasskit's main job on a built-in default that needs no AMASS download.

The demo runs the pipeline a user runs on the real archives, on synthetic ones: synthesise a tree packed as release
archives, unpack them (in parallel, verified against the synthetic checksum table), catalog the result, assign the
AMASS paper's split, read every catalogued file back through the validating reader, and prepare one store per split
(30 fps, the middle 80%, mirrored copies), then load batches of clips from the training store the way a training
loop does and measure the loader's throughput, and write a preview video of a prepared sequence beside its mirrored
copy (the built-in skeleton; MP4 where an ffmpeg is found, else GIF); last, convert the two shortest files to the
other model (SMPL+H -> SMPL-X, or back) with synthetic body models and their transfer file, reporting the errors.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._util.paths import user_path
from .archives import UnpackReport, unpack_archives
from .catalog import Catalog, DatasetSummary, ScanReport, SplitAssignment, scan
from .errors import AmassKitError
from .io import read
from .prepare import PrepareConfig, PrepareReport, prepare
from .synth import SynthSummary, synth_tree

__all__ = ["DEMO_SPLIT", "DemoReport", "LoadingReport", "load_batches", "run_demo", "write_preview"]

logger = logging.getLogger(__name__)

DEMO_SPLIT = "amass-paper"


@dataclass(frozen=True)
class LoadingReport:
    """Batches drawn from a store by :class:`~amasskit.data.Loader`: ``batches`` of up to ``batch_size`` clips of
    ``clip_length`` frames (``frames`` in all) in ``seconds``; ``shapes``: the first batch's field shapes."""

    store: Path
    clip_length: int
    batch_size: int
    batches: int
    frames: int
    seconds: float
    shapes: dict[str, tuple[int, ...]]

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def load_batches(
    store: Path,
    *,
    clip_length: int = 32,
    stride: int = 8,
    batch_size: int = 256,
    batches: int = 100,
    seed: int = 0,
) -> LoadingReport:
    """Draw ``batches`` shuffled batches of windows (every ``stride`` frames) from ``store``, epoch after epoch, as
    a training loop does, and time them all (opening the store included)."""
    from .data import ClipDataset, Loader

    loader = Loader(ClipDataset(store, clip_length, stride=stride), batch_size, seed=seed)
    shapes: dict[str, tuple[int, ...]] = {}
    done = frames = epoch = 0
    start = time.perf_counter()
    while done < batches and len(loader):
        loader.set_epoch(epoch)
        for batch in loader:
            shapes = shapes or {k: tuple(v.shape) for k, v in batch.items()}
            done += 1
            frames += int(batch["trans"].shape[0]) * clip_length
            if done >= batches:
                break
        epoch += 1
    return LoadingReport(store, clip_length, batch_size, done, frames, time.perf_counter() - start, shapes)


def write_preview(store: Path, folder: Path, *, seconds: float = 4.0, size: int = 320) -> Path:
    """A preview of ``store``'s first sequence beside its mirrored copy (when it has one): ``folder/preview.mp4``
    (``.gif`` where no ffmpeg is found)."""
    from .store import Store
    from .viz import View, find_ffmpeg, render

    sequences = Store(store).sequences
    first = sequences[0]
    inputs, labels = [f"{store}#0"], [f"{first.get('name', 'sequence 0')} (as prepared)"]
    for i, meta in enumerate(sequences):
        if meta.get("source") == first.get("source") and meta.get("augmentation") == "mirror":
            inputs.append(f"{store}#{i}")
            labels.append("mirrored copy")
            break
    output = folder / ("preview.mp4" if find_ffmpeg() else "preview.gif")
    fps = 30.0
    return render(inputs, output, frames=(0, int(seconds * fps)), fps=15.0, labels=labels,
                  view=View(width=size, height=size))  # fmt: skip


@dataclass(frozen=True)
class DemoReport:
    """The demo's findings.

    Attributes:
        synth: what the generator wrote (``out/synthetic``, archives in ``out/synthetic/archives``).
        unpack: the unpack report (into ``out/amass``).
        scan: the catalog scan (``out/amass/amasskit-catalog.sqlite``).
        split: the split assignment (:data:`DEMO_SPLIT`).
        split_counts: files per split.
        stats: per sub-dataset summary from the catalog.
        prepared: the prepared stores (``out/stores/<split>``: 30 fps, middle 80%, mirrored copies).
        problems: ``(path, "ErrorType: message")`` for files that failed to read (none expected).
        seconds: stage -> wall time.
        loading: batches of 32-frame clips drawn from the training store (None when it has none).
        preview: the preview video (None when the training store is empty).
        converted: output file -> summary (millimetres, frames) of the two shortest files converted to
            ``converted_to`` with synthetic models in ``out/models`` (outputs in ``out/converted``).
    """

    synth: SynthSummary
    unpack: UnpackReport
    scan: ScanReport
    split: SplitAssignment
    split_counts: dict[str, int]
    stats: list[DatasetSummary]
    prepared: PrepareReport
    problems: list[tuple[str, str]]
    seconds: dict[str, float]
    loading: LoadingReport | None = None
    preview: Path | None = None
    converted: dict[str, dict[str, float]] | None = None
    converted_to: str = ""

    @property
    def files(self) -> int:
        return sum(d.files for d in self.stats)

    @property
    def frames(self) -> int:
        return sum(d.frames for d in self.stats)

    @property
    def ok(self) -> bool:
        return self.unpack.ok and not self.problems


def run_demo(
    out: str | os.PathLike[str],
    *,
    files: int = 38,
    seed: int = 0,
    release: str = "smplh",
    workers: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
) -> DemoReport:
    """Run the demo in ``out`` (replacing an earlier demo there).

    Args:
        out: the demo's folder.
        files: number of motion files (two per sub-dataset by default, with the release's real length distribution).
        seed: generator seed.
        release: ``smplh`` or ``smplx``.
        workers: processes for each parallel stage.
        progress: called as ``progress(stage, done, total)`` while a stage runs (``total`` 0 when unknown).
    """
    root = user_path(out)
    seconds: dict[str, float] = {}

    def report(stage: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        cb = progress
        return lambda done, total: cb(stage, done, total)

    t = time.perf_counter()
    frames = {"n": 0}

    def on_frames(n: int) -> None:
        frames["n"] += n
        if progress is not None:
            progress("synth", frames["n"], 0)

    synth = synth_tree(
        root / "synthetic",
        files=files,
        seed=seed,
        release=release,  # type: ignore[arg-type]
        archives=True,
        workers=workers,
        overwrite=True,
        progress=on_frames,
    )
    seconds["synthesise"] = time.perf_counter() - t

    t = time.perf_counter()
    target = root / "amass"
    if target.exists():
        shutil.rmtree(target)
    sizes = {str(p): p.stat().st_size for p in synth.archives}
    total = sum(sizes.values())
    done = {i: 0 for i in range(len(synth.archives))}

    def on_bytes(index: int, n: int) -> None:
        done[index] = n
        if progress is not None:
            progress("unpack", sum(done.values()), total)

    unpacked = unpack_archives(
        synth.archives,
        target,
        workers=workers,
        verify=True,
        checksums=synth.root / "archives" / "checksums.json",
        progress=on_bytes,
    )
    seconds["unpack"] = time.perf_counter() - t

    t = time.perf_counter()
    scanned = scan(target, workers=workers, progress=report("catalog"))
    seconds["catalog"] = time.perf_counter() - t

    problems: list[tuple[str, str]] = []
    lengths: list[tuple[Path, int]] = []
    with Catalog.open(scanned.db) as cat:
        t = time.perf_counter()
        split = cat.assign_split(DEMO_SPLIT)
        counts = cat.split_counts(DEMO_SPLIT)
        seconds["split"] = time.perf_counter() - t
        stats = cat.stats()
        problems.extend((p.path, f"{p.error}: {p.message}") for p in cat.problems())
        paths = cat.paths()
    t = time.perf_counter()
    for k, path in enumerate(paths):
        try:
            lengths.append((Path(path), read(path).num_frames))
        except AmassKitError as exc:
            problems.append((str(path), f"{type(exc).__name__}: {exc}"))
        if progress is not None:
            progress("read", k + 1, len(paths))
    seconds["read"] = time.perf_counter() - t

    t = time.perf_counter()
    config = PrepareConfig(catalog=str(scanned.db), out=str(root / "stores"), scheme=DEMO_SPLIT, fps=30.0,
                           trim_keep=0.8, mirror=True, seed=seed)  # fmt: skip
    if (root / "stores").exists():
        shutil.rmtree(root / "stores")
    prepared = prepare(config, progress=(lambda s, d, n: progress("prepare", d, n)) if progress else None)
    seconds["prepare"] = time.perf_counter() - t

    t = time.perf_counter()
    train = prepared.stores.get("train")
    loading = load_batches(train, seed=seed) if train is not None and prepared.frames["train"] else None
    seconds["load"] = time.perf_counter() - t

    t = time.perf_counter()
    preview = write_preview(train, root) if train is not None and prepared.frames["train"] else None
    seconds["preview"] = time.perf_counter() - t

    t = time.perf_counter()
    to = "smplx" if release == "smplh" else "smplh"
    converted = _convert_shortest(root, target, lengths, to=to, progress=report("convert"))
    seconds["convert"] = time.perf_counter() - t
    for _path, message in problems:
        logger.warning("%s", message)
    return DemoReport(
        synth=synth,
        unpack=unpacked,
        scan=scanned,
        split=split,
        split_counts=counts,
        stats=stats,
        prepared=prepared,
        problems=problems,
        seconds=seconds,
        loading=loading,
        preview=preview,
        converted=converted,
        converted_to=to,
    )


def _convert_shortest(
    root: Path,
    tree: Path,
    lengths: list[tuple[Path, int]],
    *,
    to: str,
    progress: Callable[[int, int], None] | None,
) -> dict[str, dict[str, float]]:
    """The two shortest files converted to ``to`` (the fast schedule) into ``root/converted``, mirroring the tree,
    with synthetic body models and transfer files written to ``root/models``."""
    from .convert import convert_files
    from .synth import write_body_models

    models = root / "models"
    if not (models / "transfer").is_dir():
        write_body_models(models)
    out = root / "converted"
    if out.exists():
        shutil.rmtree(out)
    picks = [p for p, _ in sorted(lengths, key=lambda item: item[1])[:2]]
    summaries: dict[str, dict[str, float]] = {}
    for k, path in enumerate(picks):
        rel = path.relative_to(tree)
        done = convert_files([path], out / rel.parent, to=to, model_dir=models, schedule="fast")
        summaries.update(done.files)
        if progress is not None:
            progress(k + 1, len(picks))
    return summaries
