"""Plots of a catalog and of a store, readable at a glance (matplotlib, Agg: no display needed).

The numbers behind each plot come from pure functions (:func:`store_stats`; the catalog's own records), so they are
tested apart from the drawing.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._util.atomic import atomic_path
from ..errors import RenderError
from ..store import StoreStats, store_stats

__all__ = ["StoreStats", "plot_catalog", "plot_prior_report", "plot_store", "store_stats"]

_GENDER_COLOURS = {"male": "#2f6fd0", "female": "#de5c32", "neutral": "#7a7f87"}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise RenderError("plots need matplotlib: pip install 'amasskit[plot]'") from None
    matplotlib.use("Agg")  # files only: never a window, works headless
    import matplotlib.pyplot as plt

    return plt


class MaxNLocator:  # resolved lazily: matplotlib is an optional dependency
    def __new__(cls, **kwargs: Any) -> Any:
        from matplotlib.ticker import MaxNLocator as Locator

        return Locator(**kwargs)


def _save(plt: Any, fig: Any, path: str | os.PathLike[str]) -> Path:
    """Lay out, write beside and rename (the image is whole or absent), and close the figure."""
    fig.tight_layout()
    try:
        return _write(fig, path)
    finally:
        plt.close(fig)


def _write(fig: Any, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    with atomic_path(target) as partial:
        fig.savefig(partial, dpi=110, format=target.suffix.lstrip(".") or "png")
    return target


def plot_catalog(records: list[Any], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """A catalog at a glance: hours per sub-dataset (split by gender), the spread of sequence durations per
    sub-dataset, the frame rates, and the totals. ``records``: :meth:`amasskit.catalog.Catalog.records`."""
    if not records:
        raise RenderError("an empty catalog: nothing to plot")
    plt = _pyplot()
    datasets = sorted(
        {r.dataset for r in records}, key=lambda d: -sum(r.duration for r in records if r.dataset == d)
    )
    rows = np.arange(len(datasets))
    fig, axes = plt.subplots(1, 3, figsize=(15, max(4.5, 0.32 * len(datasets) + 2)),
                             gridspec_kw={"width_ratios": [1.2, 1.2, 0.8]})  # fmt: skip
    hours_ax, spread_ax, fps_ax = axes
    left = np.zeros(len(datasets))
    for gender, colour in _GENDER_COLOURS.items():
        hours = np.array([sum(r.duration for r in records if r.dataset == d and r.gender == gender) / 3600
                          for d in datasets])  # fmt: skip
        if hours.any():
            hours_ax.barh(rows, hours, left=left, color=colour, label=gender)
            left += hours
    hours_ax.set_yticks(rows, datasets)
    hours_ax.invert_yaxis()
    hours_ax.set_xlabel("hours")
    hours_ax.set_title("hours per sub-dataset, by gender")
    hours_ax.legend(loc="lower right", frameon=False)
    for y, h in zip(rows, left, strict=True):
        hours_ax.text(h, y, f" {h:.1f}" if h >= 1 else f" {h:.2g}", va="center", fontsize=8)
    durations = [np.array([r.duration for r in records if r.dataset == d]) for d in datasets]
    import matplotlib

    # "orientation" came in matplotlib 3.10, "vert" is deprecated from 3.11
    horizontal = ({"orientation": "horizontal"} if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) >= (3, 10)
                  else {"vert": False})  # fmt: skip
    spread_ax.boxplot(durations, positions=rows, widths=0.6, showfliers=True,
                      flierprops={"markersize": 2, "alpha": 0.4}, **horizontal)  # fmt: skip
    spread_ax.set_xscale("log")
    spread_ax.set_yticks(rows, [f"{name} ({len(d)})" for name, d in zip(datasets, durations, strict=True)])
    spread_ax.invert_yaxis()
    spread_ax.set_xlabel("sequence duration, seconds (log)")
    spread_ax.set_title("duration of each sequence")
    spread_ax.grid(axis="x", alpha=0.3)
    fps = Counter(round(r.fps, 1) for r in records)
    rates = sorted(fps)
    fps_ax.bar(np.arange(len(rates)), [fps[f] for f in rates], color="#5a6270")
    fps_ax.set_xticks(np.arange(len(rates)), [f"{f:g}" for f in rates])
    fps_ax.set_xlabel("frames per second")
    fps_ax.set_ylabel("files")
    fps_ax.set_title("frame rates")
    total_hours = sum(r.duration for r in records) / 3600
    genders = Counter(r.gender for r in records)
    split = ", ".join(f"{g} {n:,}" for g, n in sorted(genders.items()))
    amount = (
        f"{total_hours:.1f} hours" if total_hours >= 1 else f"{total_hours * 60:.1f} minutes"
    )  # never 0.0 hours
    fig.suptitle(f"{title + ': ' if title else ''}{len(records):,} files, {sum(r.frames for r in records):,} frames, "
                 f"{amount} ({split})", fontsize=13)  # fmt: skip
    return _save(plt, fig, path)


def plot_store(store: Any, path: str | os.PathLike[str], *, stats: StoreStats | None = None) -> Path:
    """A store at a glance: sequence lengths, augmentation counts, and the value range of every field's
    components (1st-99th percentile bars, min-max whiskers). ``store``: an open :class:`~amasskit.store.Store`."""
    s = stats or store_stats(store)
    if s.sequences == 0:
        raise RenderError(f"{store.path}: an empty store, nothing to plot")
    plt = _pyplot()
    names = list(s.ranges)
    fig = plt.figure(figsize=(15, 4 + 1.6 * len(names)))
    grid = fig.add_gridspec(1 + len(names), 2, height_ratios=[2.2] + [1.0] * len(names))
    lengths_ax = fig.add_subplot(grid[0, 0])
    lengths_ax.hist(s.durations, bins=min(50, max(5, len(s.durations) // 4)), color="#2f6fd0")
    lengths_ax.set_xlabel("sequence length, seconds")
    lengths_ax.set_ylabel("sequences")
    lengths_ax.set_title("sequence lengths")
    aug_ax = fig.add_subplot(grid[0, 1])
    kinds = list(s.augmentation)
    aug_ax.barh(kinds, [s.augmentation[k] for k in kinds], color="#de5c32")
    aug_ax.set_xlabel("sequences")
    aug_ax.set_title("augmentation")
    for i, name in enumerate(names):
        ax = fig.add_subplot(grid[1 + i, :])
        r = s.ranges[name]
        x = np.arange(len(r))
        ax.vlines(x, r[:, 0], r[:, 4], color="#9aa1ab", linewidth=1)
        ax.vlines(x, r[:, 1], r[:, 3], color="#2f6fd0", linewidth=4)
        ax.plot(x, r[:, 2], "_", color="black", markersize=6)
        shape, dtype = s.fields[name]
        ax.set_title(f"{name} {shape} {dtype}: value per component (bar: 1st-99th percentile; line: min-max)",
                     fontsize=9, loc="left")  # fmt: skip
        ax.set_xlim(-1, len(r))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="y", alpha=0.3)
    rates = ", ".join(f"{f:g} fps ({n})" for f, n in s.fps.items())
    fig.suptitle(f"{store.path.name}: {s.sequences:,} sequences, {s.frames:,} frames, {s.seconds / 3600:.2f} hours; "
                 f"{rates}; ranges from {s.sampled:,} frames", fontsize=12)  # fmt: skip
    return _save(plt, fig, path)


def plot_prior_report(reports: Mapping[str, Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """``amasskit prior evaluate``'s reports side by side: denoising MPJPE per noise level, completion error (min
    and mean over the hypotheses), and generation's dNN and FID, one bar per prior."""
    plt = _pyplot()
    names = list(reports)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    width = 0.8 / max(1, len(names))
    levels = sorted({lv for r in reports.values() for lv in (r.get("denoising") or {})},
                    key=lambda s: (s.endswith("rad"), float(s.rstrip("admr"))))  # fmt: skip
    for i, name in enumerate(names):
        den = reports[name].get("denoising") or {}
        values = [den.get(lv, {}).get("mpjpe_mm", np.nan) for lv in levels]
        colour = f"C{i % 10}"  # one colour a prior, the same in every panel
        axes[0].bar(np.arange(len(levels)) + i * width, values, width, label=name, color=colour)
        comp = reports[name].get("completion") or {}
        axes[1].bar(np.arange(2) + i * width, [comp.get("min_mm", np.nan), comp.get("mean_mm", np.nan)], width,
                    label=name, color=colour)  # fmt: skip
        gen = reports[name].get("generation") or {}
        axes[2].bar(np.arange(2) + i * width, [gen.get("dnn", np.nan), gen.get("fid", np.nan)], width, label=name,
                    color=colour)  # fmt: skip
    for ax, ticks, title, unit in ((axes[0], levels, "denoising (60-frame clips)", "MPJPE (mm)"),
                                   (axes[1], ["min", "mean"], "completion (left leg hidden)", "hidden joints (mm)"),
                                   (axes[2], ["dNN (rad)", "FID"], "generation", "")):  # fmt: skip
        ax.set_xticks(np.arange(len(ticks)) + width * (len(names) - 1) / 2, ticks)
        ax.set_title(title)
        ax.set_ylabel(unit)
    axes[0].legend(fontsize=8)
    if not levels:
        axes[0].text(0.5, 0.5, "not run:\nno held-out clip long enough", ha="center", va="center",
                     transform=axes[0].transAxes)  # fmt: skip
    return _save(plt, fig, path)
