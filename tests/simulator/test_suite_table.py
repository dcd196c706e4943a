"""The suite table's maths: goodputs as bounds, their ratios, geometric means, the table."""

from __future__ import annotations

import math

import pytest

from triskel.simulator.goodput import GoodputResult, Probe
from triskel.simulator.suite_table import (
    Bounded,
    Columns,
    Kind,
    WorkloadRow,
    best_of,
    geometric_mean,
    goodput_of,
    mean_ratio,
    ratio,
    suite_table,
    summary_json,
)

EXACT, AT_LEAST, BELOW = Kind.EXACT, Kind.AT_LEAST, Kind.BELOW


def search(*probes: tuple[float, float], capped: bool = False) -> GoodputResult:
    """A search over (rate scale, attainment) probes with a 0.9 target."""
    made = tuple(Probe(scale, attainment, None) for scale, attainment in probes)
    passed = [p for p in made if p.slo_attainment >= 0.9]
    best = max(passed, key=lambda p: p.rate_scale) if passed else None
    return GoodputResult(0.9, best, is_capped=capped, probes=made)


def test_a_search_gives_its_goodput_or_the_bound_it_reached() -> None:
    assert goodput_of(search((0.5, 0.99), (1.0, 0.95), (2.0, 0.7), (1.41, 0.91))) == Bounded(1.41)
    # Every probe up to the ceiling passed: at least the ceiling.
    assert goodput_of(search((32.0, 1.0), (64.0, 0.97), capped=True)) == Bounded(64.0, AT_LEAST)
    # The first probe missed: below the lowest rate probed.
    assert goodput_of(search((0.0625, 0.4))) == Bounded(0.0625, BELOW)


@pytest.mark.parametrize(
    ("top", "bottom", "expected"),
    [
        # 3.83 / 2.48 = 1.544...: two found goodputs give an exact ratio.
        (Bounded(3.83), Bounded(2.48), Bounded(3.83 / 2.48)),
        # top ≥ 64 over 16: at least 4.
        (Bounded(64.0, AT_LEAST), Bounded(16.0), Bounded(4.0, AT_LEAST)),
        # 2 over a bottom below 0.5: more than 4.
        (Bounded(2.0), Bounded(0.5, BELOW), Bounded(4.0, AT_LEAST)),
        # top below 0.5 over 2: less than 0.25.
        (Bounded(0.5, BELOW), Bounded(2.0), Bounded(0.25, BELOW)),
        # 8 over a bottom ≥ 64: at most 0.125 (shown as a "<" bound).
        (Bounded(8.0), Bounded(64.0, AT_LEAST), Bounded(0.125, BELOW)),
        # Both at the ceiling, or a top below over a bottom below: anything is possible.
        (Bounded(64.0, AT_LEAST), Bounded(64.0, AT_LEAST), None),
        (Bounded(0.5, BELOW), Bounded(0.5, BELOW), None),
    ],
)
def test_ratios_of_bounds_are_bounds(
    top: Bounded, bottom: Bounded, expected: Bounded | None
) -> None:
    assert ratio(top, bottom) == expected


def test_the_geometric_mean_cancels_reciprocal_ratios() -> None:
    # exp((ln 2 + ln 0.5) / 2) = exp(0) = 1: a 2× win and a 2× loss average to even.
    assert geometric_mean([2.0, 0.5]) == pytest.approx(1.0)
    # (1.5 × 1.2 × 0.9) ** (1/3) = 1.62 ** (1/3) = 1.1745...
    assert geometric_mean([1.5, 1.2, 0.9]) == pytest.approx(1.62 ** (1 / 3))
    assert geometric_mean([3.0]) == pytest.approx(3.0)


@pytest.mark.parametrize("values", [[], [1.0, 0.0], [2.0, -1.0], [math.nan]])
def test_the_geometric_mean_refuses_what_it_cannot_average(values: list[float]) -> None:
    with pytest.raises(ValueError, match="geometric_mean"):
        geometric_mean(values)


def mean_of(ratios: list[Bounded | None]) -> tuple[float, Kind] | None:
    mean = mean_ratio(ratios)
    return None if mean is None else (round(mean.value, 9), mean.kind)


def test_the_mean_of_ratios_is_a_bound_when_some_ratio_is() -> None:
    assert mean_of([Bounded(2.0), Bounded(0.5)]) == (1.0, EXACT)
    # One ratio is only a lower bound, so the mean is one too: sqrt(4 × 1) = 2.
    assert mean_of([Bounded(4.0, AT_LEAST), Bounded(1.0)]) == (2.0, AT_LEAST)
    # Unknown ratios are left out; bounds in both directions leave the mean unknown.
    assert mean_of([None, Bounded(3.0)]) == (3.0, EXACT)
    assert mean_of([Bounded(4.0, AT_LEAST), Bounded(0.5, BELOW)]) is None
    assert mean_of([None]) is None


def test_the_best_peer_is_the_highest_goodput_first_on_a_tie() -> None:
    goodputs = {"a": Bounded(2.0), "b": Bounded(3.0), "c": Bounded(3.0), "d": Bounded(9.0)}
    assert best_of(goodputs, ["a", "b", "c"]) == "b"


COLUMNS = Columns(subject="triskel", baseline="round-robin", peers=("llm-d", "dynamo"))
ROWS = [
    # Best peer dynamo 2.48: 3.83 / 2.48 = 1.544; over round-robin 3.83 / 0.841 = 4.554.
    WorkloadRow(
        "mooncake",
        12031,
        {
            "round-robin": Bounded(0.841),
            "llm-d": Bounded(2.18),
            "dynamo": Bounded(2.48),
            "triskel": Bounded(3.83),
        },
    ),
    # Best peer llm-d 19: 11.8 / 19 = 0.621; over round-robin 11.8 / 4 = 2.95.
    WorkloadRow(
        "agents",
        4000,
        {
            "round-robin": Bounded(4.0),
            "llm-d": Bounded(19.0),
            "dynamo": Bounded(15.3),
            "triskel": Bounded(11.8),
        },
    ),
]


def test_the_table_has_a_row_per_workload_and_the_geometric_means() -> None:
    lines = suite_table(ROWS, COLUMNS).splitlines()
    assert lines[0] == (
        "| Workload | Requests | round-robin | llm-d | dynamo | triskel | Best peer"
        " | triskel ÷ best peer | triskel ÷ round-robin |"
    )
    assert (
        lines[2]
        == "| mooncake | 12,031 | 0.841× | 2.18× | 2.48× | 3.83× | dynamo | 1.54× | 4.55× |"
    )
    assert lines[3] == "| agents | 4,000 | 4× | 19× | 15.3× | 11.8× | llm-d | 0.62× | 2.95× |"
    # sqrt(1.544 × 0.621) = 0.979; sqrt(4.554 × 2.95) = 3.665.
    assert lines[4] == "| **Geometric mean** |  |  |  |  |  |  | **0.98×** | **3.67×** |"


def test_the_json_summary_keeps_the_unrounded_numbers() -> None:
    summary = summary_json(ROWS, COLUMNS)
    first = summary["workloads"][0]
    assert first["bestPeer"] == "dynamo"
    assert first["vsBestPeer"] == {"value": pytest.approx(3.83 / 2.48), "kind": "exact"}
    assert first["goodput"]["triskel"] == {"value": 3.83, "kind": "exact"}
    mean = summary["geometricMean"]["vsBestPeer"]
    assert mean["value"] == pytest.approx(math.sqrt(3.83 / 2.48 * 11.8 / 19))
