"""Goodput: the highest rate scale at which a policy still meets its SLO attainment target.

DistServe (Zhong et al., OSDI 2024) defines goodput as the maximum request rate
served with at least a target share (e.g. 90 %) of requests meeting both the TTFT
and the TPOT SLO. This module searches it over rate scales of one trace:

    probe start; while it passes: 2 start, 4 start, ...  until one misses (or `high` passes)
                 while it misses: start / 2, start / 4, ... until one passes (or `low` misses)
    then bisect geometrically between the highest pass and the lowest miss
    until miss / pass <= 1 + tolerance

Starting where the caller already has a run (the reported rate) saves a probe; a
search started at `low` is the classic doubling one.

The search assumes attainment does not increase with the rate. When it does (noise,
a cache that warms up better under load), the answer is still a *verified* point:
the highest probed rate that met the target, with every probed rate above it
missing. Rates past the first miss are never explored, so a pass beyond a dip is
not found. Every probe is returned so a plot can show the curve and its dips.

Pure apart from calling `probe_at`, which runs (or simulates) the trace at a scale.
A probe only has to tell pass from miss: one that stops as soon as it is sure to
miss (`SloJudge`) reports the bound it stopped at, flagged `is_upper_bound`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

_GROWTH = 2.0
"""Each exploratory probe doubles the rate: few probes to bracket a wide range."""


@dataclass(frozen=True, slots=True)
class Attainment:
    """A run's SLO attainment, or the most it could reach when the run stopped early."""

    value: float
    is_upper_bound: bool = False


@dataclass(frozen=True, slots=True)
class Probe:
    rate_scale: float
    slo_attainment: float
    request_rate_per_s: float | None
    """The offered load at this scale (see `RunMetrics.request_rate_per_s`)."""
    is_upper_bound: bool = False
    """The run stopped once sure to miss the target: `slo_attainment` is at most this."""


@dataclass(frozen=True, slots=True)
class GoodputResult:
    """The answer of `find_goodput`; `best` is None when even `low` misses the target."""

    target: float
    best: Probe | None
    is_capped: bool
    """`high` itself met the target: the true goodput may lie above it."""
    probes: tuple[Probe, ...]
    """Every probe in the order it ran."""

    @property
    def rate_scale(self) -> float | None:
        return None if self.best is None else self.best.rate_scale

    @property
    def slo_attainment(self) -> float | None:
        return None if self.best is None else self.best.slo_attainment

    @property
    def request_rate_per_s(self) -> float | None:
        """Goodput in requests per second (None when unknown or not found)."""
        return None if self.best is None else self.best.request_rate_per_s


def find_goodput(
    probe_at: Callable[[float], Probe],
    target: float = 0.9,
    low: float = 0.125,
    high: float = 64.0,
    tolerance: float = 0.05,
    start: float | None = None,
) -> GoodputResult:
    """The highest rate scale in [low, high] whose SLO attainment is >= `target`.

    `start` (default `low`, clamped into [low, high]) is probed first. `tolerance` is
    relative: the answer is within a factor (1 + tolerance) of the boundary the probes
    found. Rates span orders of magnitude, so a relative width costs the same number
    of probes at any scale. At most ceil(log2(high / low)) + 1 exploratory probes and
    ceil(log2(log(growth) / log(1 + tolerance))) bisections run.
    """
    _check_arguments(target, low, high, tolerance)
    probes: list[Probe] = []

    def probe(rate_scale: float) -> Probe:
        result = probe_at(rate_scale)
        probes.append(result)
        return result

    rate_scale = min(max(low if start is None else start, low), high)
    passed: Probe | None = None
    current = probe(rate_scale)
    if current.slo_attainment >= target:
        passed = current
        while rate_scale < high:
            rate_scale = min(rate_scale * _GROWTH, high)
            current = probe(rate_scale)
            if current.slo_attainment < target:
                break
            passed = current
        else:
            return GoodputResult(target, passed, is_capped=True, probes=tuple(probes))
    else:
        while rate_scale > low:
            rate_scale = max(rate_scale / _GROWTH, low)
            lower = probe(rate_scale)
            if lower.slo_attainment >= target:
                passed = lower
                break
            current = lower
        else:
            return GoodputResult(target, None, is_capped=False, probes=tuple(probes))
    missed_scale = current.rate_scale
    assert passed is not None

    # Invariant: `passed` met the target, `missed_scale` did not.
    while missed_scale > passed.rate_scale * (1 + tolerance):
        middle = math.sqrt(passed.rate_scale * missed_scale)
        current = probe(middle)
        if current.slo_attainment >= target:
            passed = current
        else:
            missed_scale = middle
    return GoodputResult(target, passed, is_capped=False, probes=tuple(probes))


def _check_arguments(target: float, low: float, high: float, tolerance: float) -> None:
    if not 0 < target <= 1:
        raise ValueError(f"find_goodput: target must be in (0, 1], got {target}")
    if not 0 < low <= high:
        raise ValueError(f"find_goodput: need 0 < low <= high, got low={low}, high={high}")
    if not tolerance > 0:
        raise ValueError(f"find_goodput: tolerance must be > 0, got {tolerance}")
