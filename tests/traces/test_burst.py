"""A burst over a trace: more of its own requests inside the window, nothing outside."""

from __future__ import annotations

import pytest

from triskel.traces.burst import with_burst
from triskel.traces.types import Trace, TraceRequest


def trace(count: int = 100, gap_s: float = 1.0) -> Trace:
    requests = tuple(TraceRequest(n * gap_s, 100 + n, 10 + n, (), 0, None, n) for n in range(count))
    return Trace("t", "test", requests)


def test_the_window_carries_factor_times_its_traffic() -> None:
    burst = with_burst(trace(), 20.0, 40.0, 3.0, seed=1)
    inside = [r for r in burst.requests if 20.0 <= r.arrival_s < 40.0]
    outside = [r for r in burst.requests if not 20.0 <= r.arrival_s < 40.0]
    assert len(inside) == 3 * 20  # an integer factor: exactly two copies each
    assert len(outside) == 80
    # Copies keep their original's lengths: the window's own mix.
    assert sorted(r.num_input_tokens for r in inside) == sorted([120 + n for n in range(20)] * 3)
    # Re-indexed in arrival order (a Trace refuses requests out of order).
    assert [r.index for r in burst.requests] == list(range(140))


def test_a_fractional_factor_is_met_on_average_and_a_seed_replays() -> None:
    one = with_burst(trace(1000, 0.1), 0.0, 100.0, 1.5, seed=7)
    assert 1400 <= one.num_requests <= 1600
    assert one == with_burst(trace(1000, 0.1), 0.0, 100.0, 1.5, seed=7)


@pytest.mark.parametrize(
    ("start", "end", "factor", "message"),
    [(10.0, 5.0, 2.0, "start"), (-1.0, 5.0, 2.0, "start"), (0.0, 5.0, 0.5, "factor")],
)
def test_a_bad_burst_is_refused_naming_what(
    start: float, end: float, factor: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        with_burst(trace(), start, end, factor)
