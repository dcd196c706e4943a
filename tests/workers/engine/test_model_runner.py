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
