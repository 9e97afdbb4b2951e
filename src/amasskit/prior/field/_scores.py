"""How well a distance field fits: rank correlation with the true distance, and how well it tells clean poses from
perturbed ones. Plain numpy, from the definitions (ties share their average rank)."""

from __future__ import annotations

import numpy as np

from ...errors import InvalidArgumentError

__all__ = ["auroc", "average_ranks", "spearman"]


def average_ranks(values: np.ndarray) -> np.ndarray:
    """``values (N,)`` -> ``(N,)`` float64 ranks from 1, tied values sharing the average of their ranks."""
    values = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of ``a (N,)`` and ``b (N,)``: the Pearson correlation of their average ranks
    (NaN where either is constant)."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if len(a) != len(b) or len(a) < 2:
        raise InvalidArgumentError(f"need two equally long samples of >= 2 values, got {len(a)} and {len(b)}")
    ra, rb = average_ranks(a), average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def auroc(negative: np.ndarray, positive: np.ndarray) -> float:
    """The area under the ROC curve of scores that should be higher for ``positive`` than for ``negative``: the
    probability that a random positive scores above a random negative, ties counting half (Mann-Whitney U)."""
    neg, pos = np.asarray(negative, dtype=np.float64).ravel(), np.asarray(positive, dtype=np.float64).ravel()
    if len(neg) == 0 or len(pos) == 0:
        raise InvalidArgumentError("need at least one score on each side")
    ranks = average_ranks(np.concatenate([neg, pos]))
    u = ranks[len(neg) :].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(neg) * len(pos)))
