"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<name>.py``; this folder is on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def load_every_array(paths: list[Path]) -> None:
    """What existing tools do, and the floor for reading: ``np.load`` each file and touch every array."""
    for path in paths:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                data[key]


def settle(root: Path) -> None:
    """Flush a freshly written tree and read it once, so every method meets the same warm page cache (otherwise
    the first one measures the kernel's write-back)."""
    os.sync()
    for path in root.rglob("*.npz"):
        path.read_bytes()
