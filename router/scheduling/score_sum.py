"""The scheduler's weighted sum: each scorer's column clamped to [0, 1], weighed, added.

`clamped_sum` is one C pass over the candidates where `_score_sum.c` was built (an
optional extension, as the prefix indexes' holder map is), else numpy's four calls per
scorer; both give the same totals, value for value, in the same order (the tests drive
both with the same columns, NaN and out-of-range scores included). Why compiled: the
numpy form was ~15 µs of a pick at 1,024 candidates and ~60 µs at 10,000, most of it
per-call cost (docs/benchmarks.md, "Decision time").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from triskel.router.scheduling.candidates import FloatColumn

try:
    from triskel.router.scheduling._score_sum import clamped_sum as compiled_sum
except ImportError:  # built without a C compiler: numpy's form
    compiled_sum = None  # type: ignore[assignment]

__all__ = ["clamped_sum", "compiled_sum", "implementation", "numpy_sum"]


def numpy_sum(columns: Sequence[FloatColumn], weights: Sequence[float], n: int) -> FloatColumn:
    """The sum in numpy: a column per scorer, clamped, weighed, added in order. Two
    ufuncs, not np.clip: its Python wrappers cost more than the clamp at a few
    candidates (a pick of four was a fifth clipping)."""
    totals: FloatColumn = np.zeros(n)
    for scores, weight in zip(columns, weights, strict=True):
        totals = totals + weight * np.minimum(np.maximum(scores, 0.0), 1.0)
    return totals


def clamped_sum(columns: Sequence[FloatColumn], weights: Sequence[float], n: int) -> FloatColumn:
    """Per candidate, Σ weight × min(max(score, 0), 1) over the scorers, from 0.0."""
    if compiled_sum is not None:
        summed = compiled_sum(columns, weights, n)
        if summed is not None:  # None: a column that is not n native float64s
            return np.frombuffer(summed, np.float64)
    return numpy_sum(columns, weights, n)


def implementation() -> str:
    """Which sum `clamped_sum` runs: "compiled" or "numpy"."""
    return "compiled" if compiled_sum is not None else "numpy"
