"""Synthetic workloads: determinism, rates, burstiness, Zipf prefixes, sessions."""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from pydantic import ValidationError

from triskel.traces.synthetic import ArrivalProcess, SyntheticSpec, synthetic_trace


def spec(**fields: Any) -> SyntheticSpec:
    return SyntheticSpec.model_validate({"ratePerS": 10.0, "numRequests": 2000, **fields})


def shared_prefix(sequences: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The longest run of leading ids every sequence starts with."""
    shared = sequences[0]
    for other in sequences[1:]:
        length = 0
        while length < min(len(shared), len(other)) and shared[length] == other[length]:
            length += 1
        shared = shared[:length]
    return shared


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


def test_shared_prefixes_of_varied_length_own_consecutive_ids() -> None:
    # RAG: 6 documents of 16-128 blocks (8k-64k tokens), one question each.
    rag = spec(numPrefixes=6, prefixBlocks=16, prefixBlocksMax=128, inputTokensMean=200)
    by_first_id: dict[int, list[tuple[int, ...]]] = {}
    for request in synthetic_trace(rag, seed=12).requests:
        by_first_id.setdefault(request.prefix_block_ids[0], []).append(request.prefix_block_ids)
    # A document is what all its requests share: their questions are fresh blocks.
    documents = [shared_prefix(group) for group in by_first_id.values()]
    lengths = sorted(len(d) for d in documents)
    assert len(documents) == 6
    assert all(16 <= n <= 128 for n in lengths) and len(set(lengths)) > 1
    # Documents tile ids 0..sum(lengths) - 1 without gaps or overlaps.
    assert sorted(i for d in documents for i in d) == list(range(sum(lengths)))


def test_equal_prefix_bounds_give_the_fixed_length_trace() -> None:
    # prefixBlocksMax == prefixBlocks draws lengths that cannot differ, but draws them:
    # only the ids' layout is the same, not the random stream.
    fixed = synthetic_trace(spec(numPrefixes=3, prefixBlocks=4), seed=13)
    ranged = synthetic_trace(spec(numPrefixes=3, prefixBlocks=4, prefixBlocksMax=4), seed=13)
    first_ids = {r.prefix_block_ids[:4] for r in (*fixed.requests, *ranged.requests)}
    assert first_ids == {(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)}


def test_follow_ups_carry_the_tool_output_before_the_new_text() -> None:
    def growth(tool_tokens: float) -> float:
        agent = spec(turnsMean=6.0, thinkTimeMeanS=2.0, toolOutputTokensMean=tool_tokens)
        turns: dict[str | None, list[Any]] = {}
        for request in synthetic_trace(agent, seed=14).requests:
            turns.setdefault(request.session_id, []).append(request)
        return statistics.fmean(
            after.num_input_tokens - before.num_input_tokens - before.num_output_tokens
            for session in turns.values()
            for before, after in pairwise(session)
        )

    # A follow-up adds the new message (mean 1,024) and, with tools, the tool output
    # (mean 3,000): about 4,024 tokens instead of 1,024; 10% bounds the lognormal noise.
    assert growth(0) == pytest.approx(1024, rel=0.1)
    assert growth(3000) == pytest.approx(4024, rel=0.1)


def test_sessions_start_factor_times_as_often_inside_a_burst() -> None:
    bursty = spec(
        numRequests=None, durationS=300.0, bursts=[{"startS": 100, "endS": 150, "factor": 4}]
    )
    arrivals = [r.arrival_s for r in synthetic_trace(bursty, seed=15).requests]
    inside = sum(100 <= a < 150 for a in arrivals)
    before = sum(a < 100 for a in arrivals)
    after = sum(a >= 150 for a in arrivals)
    # 10/s outside (1,000 before, 1,500 after), 40/s inside (2,000); Poisson counts of
    # that size are within a few percent.
    assert inside == pytest.approx(2000, rel=0.1)
    assert before == pytest.approx(1000, rel=0.1)
    assert after == pytest.approx(1500, rel=0.1)


def test_options_left_unset_keep_older_traces_identical() -> None:
    chat = spec(numPrefixes=5, turnsMean=3.0, arrival="gamma")
    explicit = spec(
        numPrefixes=5, turnsMean=3.0, arrival="gamma", toolOutputTokensMean=0, bursts=[]
    )
    assert synthetic_trace(chat, seed=16) == synthetic_trace(explicit, seed=16)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"prefixBlocks": 8, "prefixBlocksMax": 4}, "prefixBlocksMax (4) must be >= prefixBlocks"),
        ({"bursts": [{"startS": 10, "endS": 5, "factor": 2}]}, "need 0 <= start (10) < end (5)"),
        (
            {
                "bursts": [
                    {"startS": 0, "endS": 50, "factor": 2},
                    {"startS": 40, "endS": 60, "factor": 2},
                ]
            },
            "windows must not overlap",
        ),
    ],
)
def test_bad_extensions_say_what_is_wrong(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        spec(**fields)


def test_a_burst_factor_below_one_names_its_field() -> None:
    with pytest.raises(ValidationError) as caught:
        spec(bursts=[{"startS": 0, "endS": 10, "factor": 0.5}])
    assert caught.value.errors()[0]["loc"] == ("bursts", 0, "factor")
