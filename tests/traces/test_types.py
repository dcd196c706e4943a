"""Trace: sorted requests, rate scaling, head and duration."""

from __future__ import annotations

import pytest

from triskel.traces.types import Trace, TraceRequest


def request(index: int, arrival_s: float) -> TraceRequest:
    return TraceRequest(
        arrival_s=arrival_s,
        num_input_tokens=10,
        num_output_tokens=2,
        prefix_block_ids=(),
        prefix_block_tokens=0,
        session_id=None,
        index=index,
    )


def trace(*arrivals_s: float) -> Trace:
    return Trace("t", "test", tuple(request(i, a) for i, a in enumerate(arrivals_s)))


def test_unsorted_requests_are_refused_naming_both() -> None:
    with pytest.raises(ValueError, match=r"request 1 arrives at 1.0 s, before request 0 at 2.0"):
        trace(2.0, 1.0)


def test_equal_arrivals_are_sorted() -> None:
    # Mooncake starts with several requests at timestamp 0.
    assert trace(0.0, 0.0, 1.0).num_requests == 3


def test_scaled_divides_arrivals_and_keeps_everything_else() -> None:
    scaled = trace(0.0, 2.0, 6.0).scaled(2.0)
    # Twice as fast: every arrival is halved, so the duration is too.
    assert [r.arrival_s for r in scaled.requests] == [0.0, 1.0, 3.0]
    assert scaled.duration_s == 3.0
    assert [r.index for r in scaled.requests] == [0, 1, 2]


@pytest.mark.parametrize("rate_scale", [0.0, -1.0, float("nan")])
def test_scaled_refuses_non_positive_scales(rate_scale: float) -> None:
    with pytest.raises(ValueError, match="rate_scale must be > 0"):
        trace(0.0).scaled(rate_scale)


def test_head_and_duration() -> None:
    full = trace(0.0, 1.5, 4.0)
    assert full.head(2).num_requests == 2
    assert full.head(2).duration_s == 1.5
    assert full.head(10) == full  # shorter than asked: everything
    assert full.head(0).duration_s == 0.0  # empty trace: no duration
    with pytest.raises(ValueError, match="n must be >= 0"):
        full.head(-1)
