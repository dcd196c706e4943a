"""From what the client saw to the simulator's records: times, failures, the run's span."""

from __future__ import annotations

import pytest

from triskel.simulator.bench.outcome import (
    Outcome,
    RequestFailed,
    StreamTimes,
    failure_reason,
    to_record,
    to_result,
)
from triskel.simulator.bench.plan import BenchRequest


def planned(index: int, send_at_s: float, num_output_tokens: int = 3) -> BenchRequest:
    return BenchRequest(index, send_at_s, [1, 2, 3, 4], num_output_tokens)


def test_stream_times_keep_the_first_and_last_token_arrivals() -> None:
    times = StreamTimes()
    times.on_tokens(0, 0.5)  # an event without tokens (a role delta) starts nothing
    times.on_tokens(1, 1.0)
    times.on_tokens(2, 1.25)
    outcome = times.outcome(num_reported_tokens=None, num_cached_tokens=2)
    assert outcome == Outcome(1.0, 1.25, num_output_tokens=3, num_cached_tokens=2)


def test_the_routers_token_count_wins_over_the_chunks_seen() -> None:
    times = StreamTimes()
    times.on_tokens(1, 1.0)
    assert times.outcome(num_reported_tokens=4, num_cached_tokens=0).num_output_tokens == 4


def test_a_stream_without_tokens_is_a_failure() -> None:
    with pytest.raises(RequestFailed, match="without a token"):
        StreamTimes().outcome(num_reported_tokens=0, num_cached_tokens=0)


def test_a_complete_answer_becomes_a_finished_record() -> None:
    record = to_record(planned(4, 2.0), Outcome(2.5, 3.0, num_output_tokens=3, num_cached_tokens=2))
    assert (record.index, record.arrival_s, record.num_input_tokens) == (4, 2.0, 4)
    assert (record.first_token_s, record.finish_s, record.num_cached_tokens) == (2.5, 3.0, 2)
    # TTFT from the planned send time; TPOT over the 2 gaps after the first token.
    assert record.ttft_s == 0.5 and record.tpot_s == 0.25


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (Outcome.failed("HTTP 503: no worker"), "HTTP 503: no worker"),
        # Shorter than asked: its TPOT would be over the wrong token count.
        (
            Outcome(2.5, 3.0, num_output_tokens=2, num_cached_tokens=2),
            "got 2 output tokens, asked for exactly 3",
        ),
    ],
)
def test_failures_have_no_times_and_say_why(outcome: Outcome, reason: str) -> None:
    request = planned(0, 2.0)
    record = to_record(request, outcome)
    assert not record.is_finished and record.first_token_s is None
    assert record.num_cached_tokens == 0
    assert failure_reason(request, outcome) == reason


def test_the_result_spans_first_arrival_to_last_finish() -> None:
    requests = [planned(0, 1.0), planned(1, 2.0), planned(2, 3.0)]
    outcomes = [
        Outcome(1.5, 4.0, num_output_tokens=3),
        Outcome(2.5, 6.0, num_output_tokens=3),
        Outcome.failed("timed out"),
    ]
    result = to_result("http://x:1", 2.0, requests, outcomes, wall_s=7.5)
    assert (result.policy, result.rate_scale, result.wall_s) == ("http://x:1", 2.0, 7.5)
    assert [r.is_finished for r in result.requests] == [True, True, False]
    assert result.duration_s == 5.0  # 6.0 - 1.0
    assert result.instances == []  # a client sees no instance


def test_a_run_where_nothing_finished_lasts_zero_seconds() -> None:
    result = to_result("u", 1.0, [planned(0, 1.0)], [Outcome.failed("x")], wall_s=1.0)
    assert result.duration_s == 0.0
