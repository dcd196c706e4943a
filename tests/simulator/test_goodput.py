"""find_goodput on synthetic attainment curves: answer, tolerance, probe count."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from triskel.simulator.goodput import Probe, find_goodput

Curve = Callable[[float], float]

# With the defaults (low 1/8, tolerance 5 %), the bracket after exploration spans a
# factor of 2; log(2) / log(1.05) = 14.2 and ceil(log2(14.2)) = 4 bisections.
NUM_BISECTIONS = 4


def runner(curve: Curve, calls: list[float]) -> Callable[[float], Probe]:
    def probe_at(rate_scale: float) -> Probe:
        calls.append(rate_scale)
        # The trace offers 2 requests/s at scale 1.
        return Probe(rate_scale, curve(rate_scale), 2.0 * rate_scale)

    return probe_at


def step(boundary: float) -> Curve:
    return lambda rate: 1.0 if rate <= boundary else 0.5


def linear(boundary: float) -> Curve:
    # 1.0 at rate 0, 0.9 exactly at `boundary`, falling linearly.
    return lambda rate: max(0.0, 1.0 - 0.1 * rate / boundary)


@pytest.mark.parametrize(
    ("curve", "boundary", "num_explorations"),
    [
        # 1/8 .. 2 pass, 4 misses: 6 exploratory probes.
        (step(3.0), 3.0, 6),
        # 1/8 .. 4 pass, 8 misses: 7.
        (linear(5.0), 5.0, 7),
        # 1/8 and 1/4 pass, 1/2 misses: 3.
        (step(0.3), 0.3, 3),
        # Boundary on a probed rate: 1/8 .. 1 pass, 2 misses, then bisect (1, 2).
        (step(1.0), 1.0, 5),
    ],
)
def test_monotone_curves_within_tolerance(
    curve: Curve, boundary: float, num_explorations: int
) -> None:
    calls: list[float] = []
    result = find_goodput(runner(curve, calls))
    assert result.rate_scale is not None
    # A verified pass at most a factor 1.05 below the boundary.
    assert boundary / 1.05 <= result.rate_scale <= boundary
    assert result.slo_attainment is not None and result.slo_attainment >= 0.9
    assert not result.is_capped
    assert len(result.probes) == len(calls) == num_explorations + NUM_BISECTIONS
    assert [p.rate_scale for p in result.probes] == calls
    # 2 requests/s per unit of rate scale (see `runner`).
    assert result.request_rate_per_s == pytest.approx(2.0 * result.rate_scale)


def test_tighter_tolerance_costs_more_bisections() -> None:
    calls: list[float] = []
    result = find_goodput(runner(step(3.0), calls), tolerance=0.001)
    assert result.rate_scale is not None and 3.0 / 1.001 <= result.rate_scale <= 3.0
    # log(2) / log(1.001) = 693.5, ceil(log2(693.5)) = 10 bisections after 6 explorations.
    assert len(calls) == 6 + 10


def test_noisy_curve_returns_a_verified_pass() -> None:
    def noisy(rate: float) -> float:
        # Deterministic per rate: jitter of +-3 % on a linear curve crossing 0.9 at 5.
        jitter = random.Random(round(rate * 1e6)).uniform(-0.03, 0.03)
        return linear(5.0)(rate) + jitter

    calls: list[float] = []
    result = find_goodput(runner(noisy, calls))
    assert result.rate_scale is not None
    # The answer itself was probed and passed; every probe above it missed.
    assert noisy(result.rate_scale) >= 0.9
    assert all(p.slo_attainment < 0.9 for p in result.probes if p.rate_scale > result.rate_scale)
    # +-3 % of attainment moves the crossing by at most +-1.5 in rate on this slope.
    assert 3.5 / 1.05 <= result.rate_scale <= 6.5
    assert len(calls) == len(set(calls))


def test_non_monotone_curve_keeps_the_highest_verified_point() -> None:
    # Misses in a dip at (0.4, 0.6], passes again above: the search stops at the dip.
    def dip(rate: float) -> float:
        return 0.5 if 0.4 < rate <= 0.6 else 1.0

    result = find_goodput(runner(dip, []))
    assert result.rate_scale is not None
    assert 0.4 / 1.05 <= result.rate_scale <= 0.4
    # 1/8, 1/4 pass and 1/2 misses: the curve past the dip is never explored.
    assert max(p.rate_scale for p in result.probes) == 0.5


def test_passing_at_high_is_capped() -> None:
    calls: list[float] = []
    result = find_goodput(runner(lambda rate: 1.0, calls), low=1.0, high=10.0)
    assert result.is_capped and result.rate_scale == 10.0
    # 1, 2, 4, 8, then 10 (clamped to high) and no bisection.
    assert calls == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_missing_at_low_finds_nothing() -> None:
    calls: list[float] = []
    result = find_goodput(runner(lambda rate: 0.0, calls), low=0.5)
    assert result.best is None and result.rate_scale is None
    assert result.slo_attainment is None and result.request_rate_per_s is None
    assert calls == [0.5]


def test_bisection_is_geometric() -> None:
    calls: list[float] = []
    find_goodput(runner(step(1.5), calls), low=1.0)
    # Pass at 1, miss at 2: the first bisection probes sqrt(1 * 2).
    assert calls[:3] == [1.0, 2.0, pytest.approx(math.sqrt(2.0))]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": 0.0}, "target must be in"),
        ({"target": 1.2}, "target must be in"),
        ({"low": 0.0}, "need 0 < low <= high"),
        ({"low": 4.0, "high": 2.0}, "low=4.0, high=2.0"),
        ({"tolerance": 0.0}, "tolerance must be > 0"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        find_goodput(runner(step(1.0), []), **kwargs)


@pytest.mark.parametrize(
    ("boundary", "expected_calls"),
    [
        # Passing at the start: up by doubling, as from `low` (1, 2, 4 pass; 8 misses).
        (5.0, [1.0, 2.0, 4.0, 8.0]),
        # Missing at the start: down by halving until a pass (1 and 1/2 miss; 1/4 passes).
        (0.3, [1.0, 0.5, 0.25]),
    ],
)
def test_a_search_from_start_goes_up_or_down(boundary: float, expected_calls: list[float]) -> None:
    calls: list[float] = []
    result = find_goodput(runner(step(boundary), calls), low=0.0625, start=1.0)
    assert calls[: len(expected_calls)] == expected_calls
    # Then the same bisection: a verified pass within 5 % below the boundary.
    assert result.rate_scale is not None
    assert boundary / 1.05 <= result.rate_scale <= boundary
    assert len(calls) == len(expected_calls) + NUM_BISECTIONS


def test_a_search_from_start_probes_what_a_search_from_low_probes_above_it() -> None:
    # From `low` 1/8 the classic search probes 1/8 .. 2 then 4 (miss) and bisects; from
    # start 1 it skips 1/8 .. 1/2 and probes exactly the rest.
    from_low: list[float] = []
    from_start: list[float] = []
    low_answer = find_goodput(runner(step(3.0), from_low))
    start_answer = find_goodput(runner(step(3.0), from_start), start=1.0)
    assert from_start == [rate for rate in from_low if rate >= 1.0]
    assert start_answer.rate_scale == low_answer.rate_scale


def test_a_start_missing_down_to_low_finds_nothing() -> None:
    calls: list[float] = []
    result = find_goodput(runner(lambda rate: 0.0, calls), low=0.25, start=1.0)
    assert result.best is None
    assert calls == [1.0, 0.5, 0.25]


def test_a_start_outside_the_range_is_clamped() -> None:
    calls: list[float] = []
    find_goodput(runner(lambda rate: 1.0, calls), low=1.0, high=4.0, start=100.0)
    # Clamped to high, which passes: capped at once.
    assert calls == [4.0]


def test_an_upper_bound_probe_counts_as_a_miss() -> None:
    # A probe stopped early reports the most it could reach (< target): a miss.
    def probe_at(rate_scale: float) -> Probe:
        if rate_scale > 2.0:
            return Probe(rate_scale, 0.89, None, is_upper_bound=True)
        return Probe(rate_scale, 0.95, None)

    result = find_goodput(probe_at, low=1.0)
    assert result.rate_scale is not None and 2.0 / 1.05 <= result.rate_scale <= 2.0
    assert result.best is not None and not result.best.is_upper_bound
