"""Continuous batching, token budget, chunked prefill, prefix hits, preemption, remote KV."""

from __future__ import annotations

import random
from array import array

import pytest

from triskel.common.profiles import LatencyProfile
from triskel.workers.engine.batch import ScheduledBatch
from triskel.workers.engine.block_pool import BlockPool
from triskel.workers.engine.kv_cache_manager import KvCacheManager
from triskel.workers.engine.model_runner import MockModelRunner
from triskel.workers.engine.outputs import KvLoad, RequestOutput
from triskel.workers.engine.request import EngineRequest, RequestState, RequestStatus
from triskel.workers.engine.request_queues import RequestQueues
from triskel.workers.engine.sampler import prompt_seed
from triskel.workers.engine.scheduler import Scheduler

BLOCK = 4


class Harness:
    """A scheduler, its queues, its KV manager and the mock runner, stepped by hand."""

    def __init__(
        self, profile: LatencyProfile, num_blocks: int = 64, budget: int = 16, max_seqs: int = 4
    ) -> None:
        self.pool = BlockPool(num_blocks)
        self.kv = KvCacheManager(self.pool, BLOCK, "test-model")
        self.queues = RequestQueues(self.kv)
        self.scheduler = Scheduler(self.kv, self.queues, budget, max_seqs)
        self.runner = MockModelRunner(profile)
        self.tokens: dict[str, list[int]] = {}

    def add(
        self,
        request_id: str,
        prompt: list[int],
        max_tokens: int = 50,
        remote_first: int | None = None,
    ) -> RequestState:
        request = EngineRequest(
            request_id,
            prompt,
            max_tokens,
            ignore_eos=True,
            remote_kv=remote_first is not None,
            first_token_id=remote_first,
        )
        token_ids = array("I", prompt if remote_first is None else [*prompt, remote_first])
        state = RequestState(
            request=request,
            token_ids=token_ids,
            num_prompt_tokens=len(prompt),
            sample_seed=prompt_seed(prompt),
            natural_length_tokens=10**6,
            needs_remote_kv=remote_first is not None,
        )
        self.queues.add(state)
        return state

    def step(self) -> tuple[ScheduledBatch, list[RequestOutput]]:
        batch = self.scheduler.schedule()
        outputs = self.scheduler.postprocess(batch, self.runner.run(batch).sampled_token_ids)
        for output in outputs:
            self.tokens.setdefault(output.request_id, []).extend(output.new_token_ids)
        return batch, outputs


def ids(batch: ScheduledBatch) -> list[tuple[str, int]]:
    return [(s.request_id, n) for s, n in zip(batch.requests, batch.num_new_tokens, strict=True)]


def test_token_budget_is_respected(simple_profile: LatencyProfile) -> None:
    harness = Harness(simple_profile, budget=16)
    for offset, name in enumerate(("a", "b", "c")):
        harness.add(name, list(range(100 * offset, 100 * offset + 10)))  # no shared prefix
    first, _ = harness.step()
    # a takes its 10 prompt tokens, b the 6 left in the budget, c waits.
    assert ids(first) == [("a", 10), ("b", 6)]
    second, _ = harness.step()
    # a decodes (1), b finishes its prompt (4), c fits its whole prompt (10): 15 <= 16.
    assert ids(second) == [("a", 1), ("b", 4), ("c", 10)]
    third, _ = harness.step()
    assert ids(third) == [("a", 1), ("b", 1), ("c", 1)]


def test_long_prompt_is_prefilled_in_chunks(simple_profile: LatencyProfile) -> None:
    harness = Harness(simple_profile, budget=16)
    state = harness.add("long", list(range(40)))
    chunks = []
    for _ in range(3):
        batch, outputs = harness.step()
        chunks.append(batch.num_new_tokens[0])
        if state.num_computed_tokens < 40:
            assert outputs == []  # no token until the whole prompt is computed
    assert chunks == [16, 16, 8]
    assert harness.tokens["long"] and len(harness.tokens["long"]) == 1


def test_new_requests_join_a_running_batch(simple_profile: LatencyProfile) -> None:
    harness = Harness(simple_profile)
    harness.add("first", list(range(8)))
    harness.step()
    harness.step()
    harness.add("second", list(range(100, 108)))
    batch, outputs = harness.step()
    # The running request keeps decoding while the newcomer is prefilled in the same step.
    assert ids(batch) == [("first", 1), ("second", 8)]
    assert [output.request_id for output in outputs] == ["first", "second"]


def test_max_num_seqs_caps_the_running_batch(simple_profile: LatencyProfile) -> None:
    harness = Harness(simple_profile, max_seqs=2)
    harness.add("a", [1, 2], max_tokens=2)
    harness.add("b", [3, 4], max_tokens=5)
    harness.add("c", [5, 6], max_tokens=5)
    batch, _ = harness.step()
    assert ids(batch) == [("a", 2), ("b", 2)]
    batch, outputs = harness.step()
    assert ids(batch) == [("a", 1), ("b", 1)]  # c still waits: two are running
    assert [o.finish_reason for o in outputs if o.request_id == "a"] == ["length"]
    batch, _ = harness.step()
    assert ids(batch) == [("b", 1), ("c", 2)]  # a finished, c takes its seat


def test_lower_limits_keep_the_running_batch_and_hold_admission(
    simple_profile: LatencyProfile,
) -> None:
    # An EP group shrinking: 3 requests run (2 blocks each) when the limit drops to 2
    # seqs and the pool to 4 blocks.
    harness = Harness(simple_profile, budget=32, max_seqs=4)
    running = [
        harness.add(name, list(range(i * 100, i * 100 + 8)), 12) for i, name in enumerate("abc")
    ]
    harness.step()
    assert all(state.is_running for state in running)
    harness.scheduler.set_limits(max_num_batched_tokens=16, max_num_seqs=2)
    harness.pool.resize(4)
    late = harness.add("late", [9, 9, 9], max_tokens=8)  # 3 blocks: fits the new pool
    while any(state.is_running for state in running):
        batch, _ = harness.step()
        # The three run on, growing past the smaller pool, and nobody is preempted;
        # "late" waits until the batch fits the new limits.
        assert batch.num_preempted == 0
        assert not late.is_running
    assert [len(harness.tokens[name]) for name in "abc"] == [12, 12, 12]
    for _ in range(20):
        if not harness.queues.has_schedulable_requests:
            break
        harness.step()
    assert len(harness.tokens["late"]) == 8


def test_prefix_hit_is_found_at_admission(simple_profile: LatencyProfile) -> None:
    harness = Harness(simple_profile)
    harness.add("first", list(range(12)), max_tokens=1)
    harness.step()
    second = harness.add("second", list(range(12)), max_tokens=1)
    batch, outputs = harness.step()
    # 12 tokens, blocks of 4: at most (12 - 1) // 4 = 2 blocks hit, since one token
    # must be computed to produce logits; the rest (4 tokens) is prefilled.
    assert ids(batch) == [("second", 4)]
    assert second.num_cached_tokens == 8
    assert outputs[0].num_cached_tokens == 8
    assert harness.scheduler.prefix_query_tokens_total == 24
    assert harness.scheduler.prefix_hit_tokens_total == 8


def test_preemption_evicts_the_newest_request_and_requeues_it_first(
    simple_profile: LatencyProfile,
) -> None:
    # 6 blocks of 4 tokens. a and b each prefill 8 tokens (2 blocks), then each takes
    # one more block when feeding its first output (position 8): the pool is full.
    harness = Harness(simple_profile, num_blocks=6)
    a = harness.add("a", list(range(8)), max_tokens=20)
    b = harness.add("b", list(range(100, 108)), max_tokens=20)
    for _ in range(5):  # prefill, then positions 8..11: no new block needed after 8
        batch, _ = harness.step()
        assert batch.num_preempted == 0
    assert harness.pool.num_free_blocks == 0
    waiting = harness.add("c", [7, 7])
    batch, _ = harness.step()  # a feeds position 12: needs a 4th block; b must go
    assert batch.num_preempted == 1
    assert ids(batch) == [("a", 1)]  # nobody is admitted in a step that preempted
    assert b.status is RequestStatus.PREEMPTED
    assert b.block_ids == [] and b.num_computed_tokens == 0
    assert list(harness.queues.waiting) == [b, waiting]
    assert a.is_running


def test_preempted_request_completes_with_the_same_tokens(simple_profile: LatencyProfile) -> None:
    def run(num_blocks: int) -> tuple[dict[str, list[int]], int]:
        harness = Harness(simple_profile, num_blocks=num_blocks)
        harness.add("a", list(range(8)), max_tokens=20)
        harness.add("b", list(range(100, 108)), max_tokens=20)
        num_preempted = 0
        for _ in range(200):
            if not harness.queues.has_schedulable_requests:
                break
            batch, _ = harness.step()
            num_preempted += batch.num_preempted
        return harness.tokens, num_preempted

    roomy, roomy_preemptions = run(num_blocks=64)
    tight, tight_preemptions = run(num_blocks=7)
    assert roomy_preemptions == 0
    assert tight_preemptions >= 1
    assert tight == roomy  # recomputation replays the same prompt: the same 20 tokens each
    assert len(tight["a"]) == len(tight["b"]) == 20


def test_remote_kv_request_waits_for_its_load(simple_profile: LatencyProfile) -> None:
    harness = Harness(simple_profile)
    state = harness.add("remote", list(range(10)), remote_first=42)
    batch, _ = harness.step()
    assert batch.is_empty  # nothing to compute until the KV arrives
    assert state.status is RequestStatus.WAITING_FOR_KV
    [load] = harness.queues.take_kv_loads()
    assert load == KvLoad("remote", state.block_ids, num_cached_blocks=0, num_prompt_tokens=10)
    assert len(load.block_ids) == 3  # 10 tokens in blocks of 4
    harness.queues.finish_kv_load(state, ok=True)
    batch, outputs = harness.step()
    # The first token (42) is fed; the engine samples index 1 and never re-emits 42.
    assert ids(batch) == [("remote", 1)]
    assert outputs[0].new_token_ids != [42] and not outputs[0].is_prefill_done
    assert state.num_output_tokens == 2


def test_abort_removes_a_request_from_any_queue(simple_profile: LatencyProfile) -> None:
    harness = Harness(simple_profile, budget=8)
    running = harness.add("running", list(range(8)))
    waiting = harness.add("waiting", list(range(8)))
    loading = harness.add("loading", list(range(20, 28)), remote_first=1)
    harness.step()
    assert loading.status is RequestStatus.WAITING
    for state in (running, waiting, loading):
        harness.queues.abort(state)
        assert state.is_finished
    assert harness.queues.requests == {}
    assert harness.pool.num_free_blocks == 64


@pytest.mark.parametrize("ok", [True, False])
def test_finish_kv_load_frees_on_failure(simple_profile: LatencyProfile, ok: bool) -> None:
    harness = Harness(simple_profile)
    state = harness.add("remote", list(range(10)), remote_first=42)
    harness.step()
    harness.queues.finish_kv_load(state, ok=ok)
    assert harness.pool.num_free_blocks == (61 if ok else 64)
    assert ("remote" in harness.queues.requests) is ok


def walk_tokens_in_flight(queues: RequestQueues) -> int:
    """`num_tokens_in_flight` by its definition: a walk over every queue."""
    total = 0
    for state in (*queues.waiting, *queues.loaded):
        uncomputed = state.num_prompt_tokens - state.num_computed_tokens
        if uncomputed > 0 and not state.needs_remote_kv:
            total += uncomputed
    for state in queues.running:
        total += max(0, state.num_prompt_tokens - state.num_computed_tokens)
        total += state.request.max_tokens - state.num_output_tokens
    return total


@pytest.mark.parametrize("seed", range(5))
def test_tokens_in_flight_follow_every_queue_change(
    simple_profile: LatencyProfile, seed: int
) -> None:
    # The waiting queue's and the running batch's shares are running sums, kept as requests
    # are added, admitted, advanced, preempted (a 20-block pool forces it), finished and
    # aborted; they must equal the walk.
    harness = Harness(simple_profile, num_blocks=20)
    queues = harness.queues
    rng = random.Random(seed)
    states: list[RequestState] = []
    for n in range(200):
        action = rng.random()
        if action < 0.2:
            prompt = [rng.randrange(100) for _ in range(rng.randrange(1, 24))]
            remote_first = 5 if rng.random() < 0.3 else None
            states.append(harness.add(f"r{n}", prompt, rng.randrange(2, 30), remote_first))
        elif action < 0.85:
            harness.step()
            for load in queues.take_kv_loads():
                queues.finish_kv_load(queues.requests[load.request_id], rng.random() < 0.8)
        elif states:
            state = rng.choice(states)
            if state.request_id in queues.requests:
                queues.abort(state)
        assert queues.num_tokens_in_flight() == walk_tokens_in_flight(queues)
