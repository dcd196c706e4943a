"""The mock forward pass: batch pricing and which requests sample a token."""

from __future__ import annotations

from array import array

import pytest

from triskel.common.latency import step_ms
from triskel.common.profiles import LatencyProfile
from triskel.workers.engine.batch import ScheduledBatch
from triskel.workers.engine.model_runner import MockModelRunner
from triskel.workers.engine.request import EngineRequest, RequestState
from triskel.workers.engine.sampler import prompt_seed, token_for_seed


def make_state(prompt: list[int], outputs: list[int], num_computed: int) -> RequestState:
    return RequestState(
        request=EngineRequest("r", prompt, max_tokens=100),
        token_ids=array("I", [*prompt, *outputs]),
        num_prompt_tokens=len(prompt),
        sample_seed=prompt_seed(prompt),
        natural_length_tokens=10**6,
        num_computed_tokens=num_computed,
    )


def test_a_mixed_batch_is_priced_as_one_pass(simple_profile: LatencyProfile) -> None:
    fresh = make_state(list(range(10)), [], 0)  # whole prompt in one chunk
    decoding = make_state(list(range(20)), [5, 6], 21)  # feeds its last output token
    partial = make_state(list(range(40)), [], 16)  # a middle chunk of a long prompt
    batch = ScheduledBatch([fresh, decoding, partial], [10, 1, 16])
    result = MockModelRunner(simple_profile).run(batch)
    # Prefill chunks (10 new after 0) and (16 new after 16); one decode with 22 tokens.
    assert result.duration_ms == pytest.approx(step_ms(simple_profile, [(10, 0), (16, 16)], [22]))
    # max(a) 10 + 0.5*26 + 0.001*(10*10 + 16*48) + 0.01*22 + 0.2*1
    assert result.duration_ms == pytest.approx(10 + 13 + 0.868 + 0.22 + 0.2)


def test_only_requests_with_every_token_computed_sample(simple_profile: LatencyProfile) -> None:
    fresh = make_state(list(range(10)), [], 0)
    decoding = make_state(list(range(20)), [5, 6], 21)
    partial = make_state(list(range(40)), [], 16)
    result = MockModelRunner(simple_profile).run(
        ScheduledBatch([fresh, decoding, partial], [10, 1, 16])
    )
    assert result.sampled_token_ids == [
        token_for_seed(fresh.sample_seed, 0),  # first token after the prompt
        token_for_seed(decoding.sample_seed, 2),  # two outputs exist: index 2 next
        None,  # 24 of 40 prompt tokens computed: no token yet
    ]


def test_recomputation_after_preemption_is_a_prefill(simple_profile: LatencyProfile) -> None:
    # A preempted request with 3 outputs recomputes prompt + outputs from scratch.
    state = make_state(list(range(8)), [1, 2, 3], 0)
    result = MockModelRunner(simple_profile).run(ScheduledBatch([state], [11]))
    assert result.duration_ms == pytest.approx(step_ms(simple_profile, [(11, 0)], []))
    assert result.sampled_token_ids == [token_for_seed(state.sample_seed, 3)]


def test_an_empty_batch_takes_no_time(simple_profile: LatencyProfile) -> None:
    result = MockModelRunner(simple_profile).run(ScheduledBatch())
    assert result.duration_ms == 0.0
    assert result.sampled_token_ids == []


def test_an_ep_group_steps_at_its_busiest_ranks_pace(simple_profile: LatencyProfile) -> None:
    contexts = [10, 20, 30, 40, 50]
    states = [make_state(list(range(n - 1)), [7], n - 1) for n in contexts]
    batch = ScheduledBatch(states, [1] * 5)
    one_rank = MockModelRunner(simple_profile).run(batch)
    assert one_rank.duration_ms == pytest.approx(step_ms(simple_profile, [], contexts))
    # 2 ranks, dealt in turn: rank 0 decodes 10, 30, 50 (ceil(5 / 2) = 3 sequences),
    # rank 1 decodes 20 and 40; rank 0 is the slower and sets the group's pace.
    two_ranks = MockModelRunner(simple_profile, num_ranks=2)
    expected_ms = step_ms(simple_profile, [], [10, 30, 50])
    assert two_ranks.run(batch).duration_ms == pytest.approx(expected_ms)
    duration_ms, _ = two_ranks.run_decodes(states)
    assert duration_ms == pytest.approx(expected_ms)
    # More ranks than sequences: each decodes one, the longest context is the slowest.
    assert MockModelRunner(simple_profile, num_ranks=8).run(batch).duration_ms == pytest.approx(
        step_ms(simple_profile, [], [50])
    )


def test_a_group_needs_a_rank(simple_profile: LatencyProfile) -> None:
    with pytest.raises(ValueError, match="num_ranks: must be >= 1, got 0"):
        MockModelRunner(simple_profile, num_ranks=0)
