"""The request queues: token counts in flight, holds, remote-KV loads, aborts, finishes."""

from __future__ import annotations

from array import array

import pytest

from triskel.workers.engine.block_pool import BlockPool
from triskel.workers.engine.kv_cache_manager import KvCacheManager
from triskel.workers.engine.outputs import KvLoad
from triskel.workers.engine.request import (
    EngineRequest,
    FinishReason,
    RequestState,
    RequestStatus,
)
from triskel.workers.engine.request_queues import RequestQueues

BLOCK = 4
NUM_BLOCKS = 16


class Setup:
    """Queues over a pool of 16 blocks of 4 tokens."""

    def __init__(self) -> None:
        self.pool = BlockPool(NUM_BLOCKS)
        self.kv = KvCacheManager(self.pool, BLOCK, "test-model")
        self.queues = RequestQueues(self.kv)

    def add(
        self,
        request_id: str,
        num_prompt_tokens: int,
        max_tokens: int = 5,
        prefill_only: bool = False,
        remote_kv: bool = False,
    ) -> RequestState:
        # Prompts differ by request, so no two share a cached block.
        first_token = 100 * sum(map(ord, request_id))
        prompt = list(range(first_token, first_token + num_prompt_tokens))
        request = EngineRequest(
            request_id, prompt, max_tokens, ignore_eos=True, prefill_only=prefill_only
        )
        state = RequestState(
            request=request,
            token_ids=array("I", prompt),
            num_prompt_tokens=num_prompt_tokens,
            sample_seed=0,
            natural_length_tokens=10**6,
            needs_remote_kv=remote_kv,
        )
        self.queues.add(state)
        return state

    def admit(self, state: RequestState) -> None:
        """What the scheduler does to the head of `waiting`: blocks for its prompt, then run."""
        assert self.queues.pop_front(self.queues.waiting) is state
        self.kv.allocate(state, state.num_prompt_tokens)
        self.queues.start_running(state)

    def start_kv_load(self, state: RequestState) -> KvLoad:
        """What the scheduler does to a remote-KV request at the head of `waiting`."""
        self.kv.allocate(state, state.num_prompt_tokens)
        load = KvLoad(state.request_id, list(state.block_ids), 0, state.num_prompt_tokens)
        self.queues.wait_for_kv(state, load)
        assert self.queues.pop_front(self.queues.waiting) is state
        return load

    def finish_run(self, state: RequestState) -> None:
        """What steps do to a running request until it leaves `running`: compute its
        prompt, sample its outputs (one for a prefill to hold, else max_tokens)."""
        num_outputs = 1 if state.is_prefill_only else state.request.max_tokens
        state.num_computed_tokens = state.num_prompt_tokens + num_outputs - 1
        state.token_ids.extend([7] * num_outputs)
        self.queues.count_tokens_done(state.num_prompt_tokens + num_outputs)
        self.queues.leave_running(state, None if state.is_prefill_only else FinishReason.LENGTH)
        self.queues.drop_left_running()


def test_waiting_requests_count_their_uncomputed_prompt() -> None:
    setup = Setup()
    first = setup.add("a", 10)
    setup.add("b", 6)
    # Nothing computed yet: all 10 + 6 prompt tokens are in flight.
    assert setup.queues.num_tokens_in_flight() == 16
    assert setup.queues.pop_front(setup.queues.waiting) is first
    # a left the queue (to be admitted or to wait for its KV): b's 6 remain.
    assert setup.queues.num_tokens_in_flight() == 6


def test_a_remote_kv_request_counts_nothing_while_its_kv_is_pulled() -> None:
    setup = Setup()
    setup.add("remote", 10, remote_kv=True)
    # Its prompt is computed elsewhere and pulled, not computed here.
    assert setup.queues.num_tokens_in_flight() == 0


def test_running_requests_count_their_prompt_and_outputs_left() -> None:
    setup = Setup()
    state = setup.add("a", 10, max_tokens=5)
    setup.admit(state)
    # 10 prompt tokens to compute and up to 5 outputs to sample.
    assert setup.queues.num_tokens_in_flight() == 15
    state.num_computed_tokens = 10
    state.token_ids.append(7)
    setup.queues.count_tokens_done(11)
    # The step computed the prompt and sampled one output: 4 outputs left.
    assert setup.queues.num_tokens_in_flight() == 4


def test_preemption_takes_the_newest_and_puts_it_first_in_line() -> None:
    setup = Setup()
    older, newer, waiting = setup.add("older", 4), setup.add("newer", 8), setup.add("late", 2)
    setup.admit(older)
    setup.admit(newer)
    victim = setup.queues.pop_newest_running()
    setup.kv.free(victim)
    victim.num_computed_tokens = 0
    setup.queues.requeue(victim)
    # The most recently admitted goes, and is readmitted before anyone who waited.
    assert victim is newer
    assert setup.queues.running == [older]
    assert list(setup.queues.waiting) == [newer, waiting]
    # older: 4 prompt + 5 outputs; newer and late: their prompts again (8 + 2).
    assert setup.queues.num_tokens_in_flight() == 9 + 8 + 2


def test_a_finished_request_frees_its_blocks_and_is_forgotten() -> None:
    setup = Setup()
    done, other = setup.add("done", 8), setup.add("other", 4)
    setup.admit(done)
    setup.admit(other)
    setup.finish_run(done)
    assert done.status is RequestStatus.FINISHED and done.finish_reason is FinishReason.LENGTH
    # Only other's one block (4 tokens) is still in use; the batch keeps its order.
    assert setup.pool.num_free_blocks == NUM_BLOCKS - 1
    assert setup.queues.running == [other]
    assert list(setup.queues.requests) == ["other"]


def test_a_prefill_only_request_holds_its_kv_until_released() -> None:
    setup = Setup()
    state = setup.add("prefill", 8, prefill_only=True)
    setup.admit(state)
    setup.finish_run(state)
    # Held: out of the running batch, but its 2 blocks stay referenced for a decode worker.
    assert state.status is RequestStatus.HOLDING_KV
    assert setup.queues.held == {"prefill": state}
    assert setup.queues.running == []
    assert setup.pool.num_free_blocks == NUM_BLOCKS - 2
    # A held request has nothing left to compute here.
    assert setup.queues.num_tokens_in_flight() == 0
    assert not setup.queues.has_schedulable_requests
    setup.queues.release(state)
    assert state.is_finished
    assert setup.queues.held == {} and setup.queues.requests == {}
    assert setup.pool.num_free_blocks == NUM_BLOCKS


def test_kv_loads_are_taken_once() -> None:
    setup = Setup()
    state = setup.add("remote", 10, remote_kv=True)
    load = setup.start_kv_load(state)
    assert state.status is RequestStatus.WAITING_FOR_KV
    # Waiting for its KV, it cannot be scheduled.
    assert not setup.queues.has_schedulable_requests
    assert setup.queues.take_kv_loads() == [load]
    # The caller started that pull: it is not handed out again.
    assert setup.queues.take_kv_loads() == []


def test_a_loaded_request_is_ready_to_decode() -> None:
    setup = Setup()
    state = setup.add("remote", 10, remote_kv=True)
    setup.start_kv_load(state)
    setup.queues.finish_kv_load(state, ok=True)
    assert state.status is RequestStatus.WAITING
    assert list(setup.queues.loaded) == [state]
    assert setup.queues.has_schedulable_requests
    # Its whole prompt is computed (pulled), and its 2 full blocks of 10 tokens are cached.
    assert state.num_computed_tokens == 10 and not state.needs_remote_kv
    assert setup.pool.num_cached_blocks == 2
    # A loaded request has no prompt tokens left to compute.
    assert setup.queues.num_tokens_in_flight() == 0


def test_a_failed_kv_load_finishes_the_request_with_an_error() -> None:
    setup = Setup()
    state = setup.add("remote", 10, remote_kv=True)
    setup.start_kv_load(state)
    setup.queues.finish_kv_load(state, ok=False)
    assert state.is_finished and state.finish_reason is FinishReason.ERROR
    # Its 3 blocks (10 tokens) are free again and it is forgotten.
    assert setup.pool.num_free_blocks == NUM_BLOCKS
    assert setup.queues.requests == {} and setup.queues.kv_waiting == {}


@pytest.mark.parametrize(
    ("where", "status"),
    [
        ("waiting", RequestStatus.WAITING),
        ("running", RequestStatus.RUNNING),
        ("kv_waiting", RequestStatus.WAITING_FOR_KV),
        ("loaded", RequestStatus.WAITING),  # waiting again, with blocks: told apart by them
        ("held", RequestStatus.HOLDING_KV),
    ],
)
def test_abort_removes_a_request_from_where_it_is(where: str, status: RequestStatus) -> None:
    setup = Setup()
    queues = setup.queues
    state = setup.add(
        "a", 8, prefill_only=where == "held", remote_kv=where in {"kv_waiting", "loaded"}
    )
    if where == "running" or where == "held":
        setup.admit(state)
    if where == "held":
        setup.finish_run(state)
    if where in {"kv_waiting", "loaded"}:
        setup.start_kv_load(state)
    if where == "loaded":
        queues.take_kv_loads()  # the pull starts, and ends:
        queues.finish_kv_load(state, ok=True)
    assert state.status is status
    queues.abort(state)
    assert state.is_finished
    # Gone from every queue, with its blocks free and nothing of it in flight or to pull.
    assert queues.requests == {} and queues.held == {} and queues.kv_waiting == {}
    assert not queues.waiting and not queues.loaded and not queues.running
    assert queues.take_kv_loads() == []
    assert queues.num_tokens_in_flight() == 0
    assert setup.pool.num_free_blocks == NUM_BLOCKS
