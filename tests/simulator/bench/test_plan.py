"""Planning a replay: trace times scaled, the trace's own prompts, built before the clock."""

from __future__ import annotations

import pytest

from triskel.simulator.bench.plan import plan_requests
from triskel.traces import prompt_token_ids
from triskel.traces.types import Trace, TraceRequest


def request(index: int, arrival_s: float, block_ids: tuple[int, ...]) -> TraceRequest:
    return TraceRequest(
        arrival_s=arrival_s,
        num_input_tokens=40,
        num_output_tokens=5 + index,
        prefix_block_ids=block_ids,
        prefix_block_tokens=16,
        session_id=None,
        index=index,
    )


# Requests 0 and 1 share their first 16-token block (id 7).
TRACE = Trace("t", "test", (request(0, 0.0, (7, 8)), request(1, 2.0, (7, 9)), request(2, 3.0, ())))


def test_plan_keeps_order_and_divides_arrivals_by_the_rate_scale() -> None:
    planned = plan_requests(TRACE, rate_scale=2.0)
    assert [p.index for p in planned] == [0, 1, 2]
    # Twice as fast: every arrival at half its trace time.
    assert [p.send_at_s for p in planned] == [0.0, 1.0, 1.5]
    assert [p.num_output_tokens for p in planned] == [5, 6, 7]


def test_plan_sends_the_trace_prompts_exactly() -> None:
    planned = plan_requests(TRACE)
    assert [p.prompt_token_ids for p in planned] == [prompt_token_ids(r) for r in TRACE.requests]
    assert all(p.num_input_tokens == 40 for p in planned)


def test_a_salt_gives_other_prompts_with_the_same_sharing() -> None:
    plain, salted = plan_requests(TRACE), plan_requests(TRACE, salt="run-2")
    assert salted[0].prompt_token_ids != plain[0].prompt_token_ids
    # The shared block stays shared, the rest stays distinct.
    assert salted[0].prompt_token_ids[:16] == salted[1].prompt_token_ids[:16]
    assert salted[0].prompt_token_ids[16:] != salted[1].prompt_token_ids[16:]


def test_a_rate_scale_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="rate_scale"):
        plan_requests(TRACE, rate_scale=0)
