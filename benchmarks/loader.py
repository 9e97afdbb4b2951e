"""loader: frames per second delivered to a training loop, llamass against amasskit against a numpy gather, in one run.

* llamass 0.0.4 (the AMASS loader on PyPI), installed into this benchmark's own virtual environment on first use
  (``--llamass-venv``; torch==2.13.0 first, then llamass) and run there in a subprocess over the unpacked tree, as its
  README does: ``AMASS(tree, clip_length=L, overlapping=False, keep=0.8, transform=torch.from_numpy, shuffle=True)``,
  ``DataLoader(batch_size=256, num_workers=w, worker_init_fn=llamass.worker_init_fn)``;
* amasskit datasets through a standard ``DataLoader(ClipDataset(store, L), batch_size=256, shuffle=True)``;
* amasskit's batch path, ``Loader(ClipDataset(store, L), batch_size=256)`` (one vectorised gather per batch);
* the physical limit: a plain numpy gather of the same windows and fields from the same memory-mapped arrays, one
  process, no torch.

The store is the tree prepared the usual way (30 fps, middle 80%, rotation vectors, float32); every method delivers the
same content per frame (all pose parameters, dmpls, translation, betas, gender). Frames per second count delivered
frames (batch x L) after the first batch (its time, worker start included, is shown apart); each measurement runs
whole epochs until ``--seconds`` have passed. "warm": the store was read once before (page cache warm); the "cold" rows
first evict the store's files from the page cache (``posix_fadvise(DONTNEED)``) so the first pass pays its page faults.
Run::

    .venv/bin/python benchmarks/loader.py [--fraction 0.02] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from _common import settle

from amasskit.catalog import scan
from amasskit.data import ClipDataset, Loader
from amasskit.prepare import PrepareConfig, prepare
from amasskit.store import Store
from amasskit.synth import synth_tree

FULL_FILES = 14_096
EPOCH_FRAMES = 20_000_000
BATCH = 256
LLAMASS = "llamass==0.0.4"
TORCH = "torch==2.13.0"

LLAMASS_RUN = r"""
import json, sys, time
import torch
import llamass
from llamass.core import AMASS, worker_init_fn

args = json.loads(sys.argv[1])
L, workers = args["clip_length"], args["workers"]
dataset = AMASS(args["tree"], clip_length=L, overlapping=False, keep=0.8, transform=torch.from_numpy,
                shuffle=True, seed=1, strict=False)
loader = torch.utils.data.DataLoader(dataset, batch_size=args["batch"], num_workers=workers,
                                     worker_init_fn=worker_init_fn if workers else None)
start = time.perf_counter()
first = None
frames = 0
for batch in loader:
    now = time.perf_counter()
    if first is None:
        first = now - start
        t0 = now
        continue
    frames += batch["poses"].shape[0] * batch["poses"].shape[1]
    if now - t0 > args["seconds"]:
        break
print(json.dumps({"frames": frames, "seconds": time.perf_counter() - t0, "first": first}))
"""


def llamass_python(venv: Path) -> Path:
    """The benchmark's own environment with llamass from PyPI (created on first use)."""
    python = venv / "bin" / "python"
    ok = (
        python.exists()
        and subprocess.run([python, "-c", "import llamass"], capture_output=True).returncode == 0
    )
    if not ok:
        print(f"installing {LLAMASS} into {venv} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, TORCH], check=True)  # the CPU build first: an open torch pin would pull CUDA
        subprocess.run([*pip, LLAMASS], check=True)
    return python


def run_llamass(python: Path, tree: Path, clip_length: int, workers: int, seconds: float) -> dict[str, float]:
    args = {
        "tree": str(tree),
        "clip_length": clip_length,
        "workers": workers,
        "batch": BATCH,
        "seconds": seconds,
    }
    done = subprocess.run([python, "-c", LLAMASS_RUN, json.dumps(args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"llamass run failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def timed(
    epochs: Iterator[Iterable[dict[str, torch.Tensor]]], seconds: float, clip_length: int
) -> dict[str, float]:
    """Consume batches from successive epochs until ``seconds`` pass; the first batch is timed apart."""
    start = time.perf_counter()
    first: float | None = None
    t0 = start
    frames = 0
    for epoch in epochs:
        for batch in epoch:
            now = time.perf_counter()
            if first is None:
                first, t0 = now - start, now
                continue
            frames += len(batch["betas"]) * clip_length
        if first is not None and time.perf_counter() - t0 > seconds:
            break
    return {"frames": frames, "seconds": time.perf_counter() - t0, "first": first or 0.0}


def amasskit_dataloader(store: Path, clip_length: int, workers: int, seconds: float) -> dict[str, float]:
    dataset = ClipDataset(store, clip_length)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0,
                                         generator=torch.Generator().manual_seed(0))  # fmt: skip

    def epochs() -> Iterator[Iterable[dict[str, torch.Tensor]]]:
        while True:
            yield loader

    return timed(epochs(), seconds, clip_length)


def amasskit_batches(store: Path, clip_length: int, workers: int, seconds: float) -> dict[str, float]:
    loader = Loader(
        ClipDataset(store, clip_length), BATCH, num_workers=workers, persistent_workers=workers > 0
    )

    def epochs() -> Iterator[Iterable[dict[str, torch.Tensor]]]:
        epoch = 0
        while True:
            loader.set_epoch(epoch)
            yield loader
            epoch += 1

    return timed(epochs(), seconds, clip_length)


def numpy_limit(store: Path, clip_length: int, seconds: float) -> dict[str, float]:
    """The same windows and fields, gathered by ``np.take`` from the memory maps: the physical limit."""
    opened = Store(store)
    fields = [np.asarray(f) for f in opened.fields.values()]  # plain views of the maps (no np.memmap hooks)
    offsets, lengths = opened.offset, opened.length
    counts = lengths // clip_length
    starts = np.concatenate([o + clip_length * np.arange(c) for o, c in zip(offsets, counts, strict=True)])
    sequence = np.repeat(np.arange(len(offsets)), counts)
    rng = np.random.default_rng(0)

    def epochs() -> Iterator[Iterable[dict[str, np.ndarray]]]:
        while True:
            order = rng.permutation(len(starts))
            yield (
                {**{str(i): f.take(rows.reshape(-1), axis=0) for i, f in enumerate(fields)},
                 "betas": opened.betas[sequence[b]], "gender": opened.gender[sequence[b]]}
                for b in np.array_split(order, max(1, len(order) // BATCH))
                for rows in [starts[b][:, None] + np.arange(clip_length)]
            )  # fmt: skip

    return timed(epochs(), seconds, clip_length)  # type: ignore[arg-type]


def evict(folder: Path) -> None:
    """Drop a folder's files from the page cache, so the next read comes from disk (Linux; no root needed)."""
    os.sync()
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fraction", type=float, default=0.02, help="of the release's files, real length distribution"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement, after the first batch")
    parser.add_argument("--llamass-venv", type=Path,
                        default=Path.home() / ".cache" / "amasskit-bench" / "llamass-venv")  # fmt: skip
    parser.add_argument("--skip-llamass", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
          f"torch {torch.__version__}, numpy {np.__version__}")  # fmt: skip
    python = None if args.skip_llamass else llamass_python(args.llamass_venv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tree = synth_tree(tmp / "tree", files=max(19, round(FULL_FILES * args.fraction)), workers=2)
        scan(tree.root, workers=2)
        report = prepare(PrepareConfig(catalog=str(tree.root), out=str(tmp / "out"), fps=30.0, trim_keep=0.8,
                                       rotation="rotvec", workers=2))  # fmt: skip
        (store,) = report.stores.values()
        opened = Store(store)
        print(f"tree: {tree.files} files ({args.fraction:.0%} of the release), {tree.frames:,} frames; store: "
              f"{opened.num_frames:,} frames at 30 fps, {sum(f.nbytes for f in opened.fields.values()) / 2**20:.0f} MiB; "
              f"fields {list(opened.fields)} + betas, gender")  # fmt: skip
        del opened
        rows: list[tuple[str, int, int, dict[str, float]]] = []
        # cold first: nothing has read the freshly written store yet; evicting makes sure
        for clip_length in (1, 32):
            evict(store)
            rows.append(("amasskit batch path, cold", clip_length, 0,
                         amasskit_batches(store, clip_length, 0, args.seconds)))  # fmt: skip
            evict(store)
            rows.append(("numpy gather, cold", clip_length, 0, numpy_limit(store, clip_length, args.seconds)))
        settle(tree.root)
        for path in store.rglob("*"):
            if path.is_file():
                path.read_bytes()
        for clip_length in (1, 32):
            limit = numpy_limit(store, clip_length, args.seconds)
            for workers in (0, 2):
                if python is not None:
                    rows.append(("llamass", clip_length, workers,
                                 run_llamass(python, tree.root, clip_length, workers, args.seconds)))  # fmt: skip
                rows.append(("amasskit ClipDataset + DataLoader", clip_length, workers,
                             amasskit_dataloader(store, clip_length, workers, args.seconds)))  # fmt: skip
                rows.append(("amasskit batch path (Loader)", clip_length, workers,
                             amasskit_batches(store, clip_length, workers, args.seconds)))  # fmt: skip
            rows.append(("numpy gather (limit)", clip_length, 0, limit))
    rate = {(n, c, w): r["frames"] / r["seconds"] for n, c, w, r in rows}
    print(f"\n{'method':36s} {'L':>3s} {'workers':>7s} {'frames/s':>12s} {'vs llamass':>11s} {'of limit':>9s} "
          f"{'1st batch':>9s} {'20M epoch':>10s}")  # fmt: skip
    for name, clip_length, workers, result in rows:
        r = rate[(name, clip_length, workers)]
        base = rate.get(("llamass", clip_length, workers))
        limit_rate = rate[("numpy gather (limit)", clip_length, 0)]
        epoch = EPOCH_FRAMES / r
        epoch_text = f"{epoch / 3600:.1f} h" if epoch > 3600 else f"{epoch:.1f} s"
        print(f"{name:36s} {clip_length:3d} {workers:7d} {r:12,.0f} "
              f"{(f'{r / base:,.0f}x' if base and 'llamass' not in name else '-'):>11s} {r / limit_rate:8.0%} "
              f"{result['first']:8.2f}s {epoch_text:>10s}")  # fmt: skip


if __name__ == "__main__":
    main()
