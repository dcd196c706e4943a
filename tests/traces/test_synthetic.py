"""Synthetic workloads: determinism, rates, burstiness, Zipf prefixes, sessions."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from pydantic import ValidationError

from triskel.traces.synthetic import ArrivalProcess, SyntheticSpec, synthetic_trace


def spec(**fields: Any) -> SyntheticSpec:
    return SyntheticSpec.model_validate({"ratePerS": 10.0, "numRequests": 2000, **fields})


def gaps_s(arrivals: list[float]) -> list[float]:
    return [b - a for a, b in pairwise(arrivals)]


def test_same_seed_same_trace_other_seed_other_trace() -> None:
    chat = spec(numPrefixes=5, turnsMean=3.0, arrival="gamma")
    assert synthetic_trace(chat, seed=7) == synthetic_trace(chat, seed=7)
    assert synthetic_trace(chat, seed=7) != synthetic_trace(chat, seed=8)


@pytest.mark.parametrize("arrival", list(ArrivalProcess))
def test_mean_rate_matches_for_both_processes(arrival: ArrivalProcess) -> None:
    trace = synthetic_trace(spec(arrival=arrival, numRequests=20_000), seed=1)
    assert trace.num_requests == 20_000
    # 20,000 gaps: the rate's relative standard error is about 1/sqrt(20,000 * shape)
    # = 1% for gamma(0.5); 5% is a wide margin.
    assert trace.num_requests / trace.duration_s == pytest.approx(10.0, rel=0.05)


def test_gamma_arrivals_are_burstier_than_poisson() -> None:
    def variation(arrival: ArrivalProcess) -> float:
        bursty = spec(arrival=arrival, gammaShape=0.25, numRequests=10_000)
        gaps = gaps_s([r.arrival_s for r in synthetic_trace(bursty, seed=3).requests])
        return statistics.pstdev(gaps) / statistics.fmean(gaps)

    # Coefficient of variation: 1 for exponential gaps, 1/sqrt(shape) = 2 for gamma(0.25).
    assert variation(ArrivalProcess.POISSON) == pytest.approx(1.0, rel=0.1)
    assert variation(ArrivalProcess.GAMMA) == pytest.approx(2.0, rel=0.15)


def test_duration_bounds_the_arrivals() -> None:
    trace = synthetic_trace(spec(numRequests=None, durationS=60.0), seed=2)
    assert trace.duration_s <= 60.0
    assert trace.num_requests == pytest.approx(600, rel=0.2)  # 10/s for 60 s


def test_lengths_follow_the_requested_means() -> None:
    trace = synthetic_trace(spec(inputTokensMean=800, outputTokensMean=100), seed=4)
    inputs = [r.num_input_tokens for r in trace.requests]
    outputs = [r.num_output_tokens for r in trace.requests]
    # Lognormal(sigma=1) has a heavy tail: 10% over 2,000 samples is about 3 sigma.
    assert statistics.fmean(inputs) == pytest.approx(800, rel=0.1)
    assert statistics.fmean(outputs) == pytest.approx(100, rel=0.1)
    assert min(inputs) >= 1 and min(outputs) >= 1


def test_block_ids_cover_the_prompt_like_mooncake() -> None:
    for request in synthetic_trace(spec(turnsMean=4.0, numPrefixes=3), seed=5).requests:
        num_blocks = len(request.prefix_block_ids)
        assert (num_blocks - 1) * 512 < request.num_input_tokens <= num_blocks * 512


def test_system_prompts_are_shared_with_zipf_popularity() -> None:
    trace = synthetic_trace(spec(numPrefixes=4, prefixBlocks=2, zipfS=1.0), seed=6)
    # Prompt p owns ids (2p, 2p + 1); everything after is fresh.
    firsts = Counter(r.prefix_block_ids[:2] for r in trace.requests)
    assert set(firsts) == {(0, 1), (2, 3), (4, 5), (6, 7)}
    # Zipf(1): ranks weigh 1, 1/2, 1/3, 1/4, so prompt 0 is about twice as popular as 1.
    assert firsts[(0, 1)] / firsts[(2, 3)] == pytest.approx(2.0, rel=0.2)
    later_ids = [i for r in trace.requests for i in r.prefix_block_ids[2:]]
    assert min(later_ids) >= 8
    assert len(later_ids) == len(set(later_ids))  # single turns: nothing else is shared


def test_session_turns_extend_the_previous_prompt_and_answer() -> None:
    trace = synthetic_trace(spec(turnsMean=4.0, thinkTimeMeanS=5.0, numPrefixes=2), seed=9)
    turns: dict[str | None, list[Any]] = {}
    for request in trace.requests:
        turns.setdefault(request.session_id, []).append(request)
    multi_turn = [t for t in turns.values() if len(t) > 1]
    assert len(multi_turn) > 50
    assert statistics.fmean(len(t) for t in turns.values()) == pytest.approx(4.0, rel=0.2)
    for session in multi_turn:
        for before, after in pairwise(session):
            ids = after.prefix_block_ids
            assert ids[: len(before.prefix_block_ids)] == before.prefix_block_ids
            # The new prompt holds the whole previous prompt and answer, plus a message.
            assert after.num_input_tokens > before.num_input_tokens + before.num_output_tokens
            assert after.arrival_s >= before.arrival_s


def test_max_input_tokens_ends_sessions() -> None:
    trace = synthetic_trace(spec(turnsMean=10.0, maxInputTokens=4096), seed=10)
    assert max(r.num_input_tokens for r in trace.requests) <= 4096
    assert trace.requests[-1].index == trace.num_requests - 1


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"ratePerS": 0}, "ratePerS"),
        ({"gammaShape": 1.0}, "gammaShape"),  # shape 1 is Poisson, not bursty
        ({"numRequests": None}, None),  # neither stopping rule
        ({"durationS": 10.0}, None),  # both stopping rules
        ({"zipfS": -1}, "zipfS"),
        ({"rate": 3}, "rate"),  # unknown fields are errors, never dropped
    ],
)
def test_bad_specs_name_the_field(fields: dict[str, Any], loc: str | None) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(**fields)
    error = caught.value.errors()[0]
    if loc is None:
        assert "exactly one of durationS and numRequests" in error["msg"]
    else:
        assert error["loc"] == (loc,)


def test_gaps_are_finite_and_positive() -> None:
    trace = synthetic_trace(spec(arrival="gamma", gammaShape=0.1), seed=11)
    assert all(math.isfinite(g) and g >= 0 for g in gaps_s([r.arrival_s for r in trace.requests]))
