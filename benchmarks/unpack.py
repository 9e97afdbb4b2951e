"""Unpacking release archives: amasskit against a single-process tarfile loop and the bz2 limit, in one run.

Unpacking is bound by bz2 decompression. The competitor is what people write: ``tarfile.open(a, "r:bz2")`` and
``extractall`` for each archive in turn. amasskit unpacks several archives at once in worker processes and, when
lbzip2 or pbzip2 is installed, decompresses each on several cores. The limits: decompressing the same bytes with
Python's bz2 on one core (the per-core floor for pure Python), and with lbzip2 on every core to /dev/null.

Run::

    .venv/bin/python benchmarks/unpack.py [--files 200] [--jobs 2]
"""

from __future__ import annotations

import argparse
import bz2
import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from amasskit.archives import unpack_archives
from amasskit.synth import synth_tree


def tarfile_loop(archives: list[Path], out: Path) -> None:
    for archive in archives:
        with tarfile.open(archive, "r:bz2") as tar:
            tar.extractall(out, filter="data")


def bz2_only(archives: list[Path]) -> None:
    for archive in archives:
        with bz2.open(archive, "rb") as fp:
            while fp.read(1 << 20):
                pass


def lbzip2_only(archives: list[Path], jobs: int) -> None:
    for archive in archives:
        with archive.open("rb") as src:
            subprocess.run(
                ["lbzip2", "-d", "-c", f"-n{jobs}"], stdin=src, stdout=subprocess.DEVNULL, check=True
            )


def timed(fn: object, *args: object, **kwargs: object) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=200, help="motion files in the synthetic release")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        summary = synth_tree(tmp / "tree", files=args.files, archives=True, seed=args.seed, workers=args.jobs)
        archives = list(summary.archives)
        packed = sum(a.stat().st_size for a in archives)
        unpacked = sum(p.stat().st_size for p in summary.root.rglob("*.npz"))
        print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
        print(f"archives: {len(archives)}, {packed / 2**20:.0f} MiB packed, {unpacked / 2**20:.0f} MiB unpacked "
              f"({summary.files} files, real length distribution)")  # fmt: skip

        rows: list[tuple[str, float]] = []
        out = tmp / "out"
        rows.append(("tarfile loop, 1 process (competitor)", timed(tarfile_loop, archives, out)))
        shutil.rmtree(out)
        seconds = timed(unpack_archives, archives, out, workers=args.jobs, decompressor="python")
        rows.append((f"amasskit unpack -j {args.jobs}, Python bz2", seconds))
        shutil.rmtree(out)
        have_lbzip2 = shutil.which("lbzip2") is not None
        if have_lbzip2:
            seconds = timed(unpack_archives, archives, out, workers=args.jobs, decompressor="lbzip2")
            rows.append((f"amasskit unpack -j {args.jobs}, lbzip2", seconds))
            shutil.rmtree(out)
        rows.append(("limit: Python bz2 decompress only, 1 core", timed(bz2_only, archives)))
        if have_lbzip2:
            rows.append(
                (f"limit: lbzip2 -n{args.jobs} decompress only", timed(lbzip2_only, archives, args.jobs))
            )
        else:
            print("lbzip2 not installed: its rows are skipped (apt-get install lbzip2)")

    base = rows[0][1]
    print(f"{'method':44s} {'seconds':>8s} {'MiB/s out':>10s} {'vs tarfile':>11s}")
    for name, seconds in rows:
        print(f"{name:44s} {seconds:8.2f} {unpacked / 2**20 / seconds:10.0f} {base / seconds:10.2f}x")


if __name__ == "__main__":
    main()
