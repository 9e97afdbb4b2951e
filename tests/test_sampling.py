"""The one rule for picking rows evenly, against a plain loop."""

from __future__ import annotations

import numpy as np

from amasskit._util.sampling import even_indices


def test_even_indices_spread_over_every_count_as_a_plain_loop_does() -> None:
    """``take`` indices from ``0`` to ``count - 1`` at equal steps, each rounded to the nearest (halves to even, as
    numpy and Python round), duplicates dropped; all of them where ``take >= count``; none for nothing."""
    for count in range(0, 40):
        for take in range(0, 45):
            n = min(count, take)
            step = (count - 1) / (n - 1) if n > 1 else 0.0  # the step, then its multiples (as linspace)
            want = sorted({round(i * step) for i in range(n)})
            got = even_indices(count, take)
            assert got.dtype == np.int64 and got.tolist() == want, (count, take)
            if take >= count:
                assert got.tolist() == list(range(count))
