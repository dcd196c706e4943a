"""Continuous batching with chunked prefill, prefix caching and preemption (vLLM v1 style).

Each step has a budget of `max_num_batched_tokens` tokens:

1. Running requests go first, in admission order. Each takes what it still
   needs (1 token when decoding; the rest of its prompt, capped by the budget,
   when prefilling, so a long prompt is prefilled in chunks across steps). If
   the pool cannot supply a block, the most recently admitted running request
   is PREEMPTED: its blocks are freed and it goes back to the front of the
   waiting queue, to be recomputed later. (Running requests may grow into blocks
   past a capacity that shrank under them, `BlockPool.can_extend`; admission may not.)
2. If nobody was preempted, waiting requests are admitted while budget and
   `max_num_seqs` allow: loaded remote-KV requests first, then the waiting
   queue in order. A request's prefix-cache hit is looked up at admission.
   Remote-KV requests get blocks for their whole prompt and wait for the KV
   (`take_kv_loads` / `finish_kv_load`) without using the budget.

After the model runs, `postprocess` advances every scheduled request, caches
its newly full blocks, appends sampled tokens and finishes or holds requests.
"""

from __future__ import annotations

from collections import deque

from triskel.workers.engine.batch import ScheduledBatch
from triskel.workers.engine.kv_cache_manager import KvCacheManager
from triskel.workers.engine.outputs import KvLoad, RequestOutput
from triskel.workers.engine.request import FinishReason, RequestState, RequestStatus


class Scheduler:
    __slots__ = (
        "_kv",
        "_kv_loads",
        "_max_num_batched_tokens",
        "_max_num_seqs",
        "_running_tokens_left",
        "_streams_tokens",
        "_waiting_prompt_tokens",
        "held",
        "host_hit_tokens_total",
        "kv_waiting",
        "loaded",
        "num_preemptions_total",
        "prefix_hit_tokens_total",
        "prefix_query_tokens_total",
        "requests",
        "running",
        "waiting",
    )

    def __init__(
        self,
        kv: KvCacheManager,
        max_num_batched_tokens: int,
        max_num_seqs: int,
        streams_tokens: bool = True,
    ) -> None:
        self._kv = kv
        # False: no output for a token that neither starts nor ends its request.
        self._streams_tokens = streams_tokens
        self._max_num_batched_tokens = max_num_batched_tokens
        self._max_num_seqs = max_num_seqs
        self.requests: dict[str, RequestState] = {}
        self.waiting: deque[RequestState] = deque()
        # `_queued_prompt_tokens` summed over `waiting`, kept as requests enter and leave
        # it (a waiting request's share does not change), so load reports need no walk
        # of a queue that can hold thousands of requests.
        self._waiting_prompt_tokens = 0
        self.loaded: deque[RequestState] = deque()
        self.running: list[RequestState] = []
        # `_running_tokens_left` summed over `running`, kept as requests enter, advance and
        # leave it: load reports are read after every step, and walking a batch of hundreds
        # each time cost a tenth of a simulated run.
        self._running_tokens_left = 0
        self.kv_waiting: dict[str, RequestState] = {}
        self.held: dict[str, RequestState] = {}
        self._kv_loads: list[KvLoad] = []
        self.prefix_query_tokens_total = 0
        self.prefix_hit_tokens_total = 0
        self.host_hit_tokens_total = 0
        self.num_preemptions_total = 0

    def set_limits(self, max_num_batched_tokens: int, max_num_seqs: int) -> None:
        """Batching limits from the next step on. Requests already running stay running
        when there are more than a smaller `max_num_seqs`: admission waits until the
        batch fits again."""
        self._max_num_batched_tokens = max_num_batched_tokens
        self._max_num_seqs = max_num_seqs

    @property
    def has_schedulable_requests(self) -> bool:
        return bool(self.running or self.waiting or self.loaded)

    def add(self, state: RequestState) -> None:
        self.requests[state.request_id] = state
        self.waiting.append(state)
        self._waiting_prompt_tokens += _queued_prompt_tokens(state)

    # -- schedule ---------------------------------------------------------------

    def schedule(self) -> ScheduledBatch:
        batch = ScheduledBatch()
        budget = self._schedule_running(batch, self._max_num_batched_tokens)
        if batch.num_preempted == 0:
            budget = self._admit(self.loaded, batch, budget)
            self._admit(self.waiting, batch, budget)
        return batch

    def schedule_decodes(self) -> list[RequestState] | None:
        """The running batch, if this step is nothing but its decodes; else None.

        That is the decision `schedule` would make when nothing waits to be admitted
        and every running request feeds the one token it sampled last: each is fed 1
        token, a request whose token starts a new block gets one (in batch order, as
        `schedule` allocates), and nobody is preempted or admitted. Most steps are
        such steps, so they skip building a `ScheduledBatch`.
        """
        running = self.running
        if not running or self.waiting or self.loaded:
            return None
        if len(running) > self._max_num_batched_tokens:
            return None
        block_size = self._kv.block_size_tokens
        num_new_blocks = 0
        for state in running:
            num_computed = state.num_computed_tokens
            if len(state.token_ids) != num_computed + 1 or num_computed < state.num_prompt_tokens:
                return None  # not exactly one token to feed, or still prefilling
            if num_computed == len(state.block_ids) * block_size:
                num_new_blocks += 1
        if num_new_blocks:
            kv = self._kv
            # Running requests may grow past a shrunk capacity (`BlockPool.can_extend`).
            if not kv.pool.can_extend(num_new_blocks):
                return None  # `schedule` preempts to make room
            for state in running:
                if state.num_computed_tokens == len(state.block_ids) * block_size:
                    kv.allocate_blocks(state, 1)
        return running

    def _schedule_running(self, batch: ScheduledBatch, budget: int) -> int:
        kv = self._kv
        block_size = kv.block_size_tokens
        running = self.running
        scheduled = batch.requests
        num_new_tokens = batch.num_new_tokens
        index = 0
        while index < len(running) and budget > 0:
            state = running[index]
            num_computed = state.num_computed_tokens
            num_new = len(state.token_ids) - num_computed
            if num_new > budget:
                num_new = budget
            # Most steps are decodes inside a block already held: nothing to allocate.
            # (`KvCacheManager.num_new_blocks`, inlined: this runs for every running request.)
            num_blocks = -(-(num_computed + num_new) // block_size) - len(state.block_ids)
            if num_blocks > 0:
                if not self._make_room(state, num_blocks, batch):
                    break  # `state` itself was preempted; it was the last running request
                kv.allocate_blocks(state, num_blocks)
            scheduled.append(state)
            num_new_tokens.append(num_new)
            budget -= num_new
            index += 1
        return budget

    def _make_room(self, state: RequestState, num_blocks: int, batch: ScheduledBatch) -> bool:
        """Preempts the newest running requests until `num_blocks` are free for `state`;
        False if `state` itself had to go."""
        while not self._kv.pool.can_extend(num_blocks):
            victim = self.running.pop()
            self._preempt(victim)
            batch.num_preempted += 1
            if victim is state:
                return False
        return True

    def _preempt(self, state: RequestState) -> None:
        self._running_tokens_left -= _running_tokens_left(state)
        self._kv.free(state)
        state.num_computed_tokens = 0
        state.status = RequestStatus.PREEMPTED
        self.waiting.appendleft(state)
        self._waiting_prompt_tokens += _queued_prompt_tokens(state)
        self.num_preemptions_total += 1

    def _admit(self, queue: deque[RequestState], batch: ScheduledBatch, budget: int) -> int:
        while queue and budget > 0 and len(self.running) < self._max_num_seqs:
            state = queue[0]
            if state.needs_remote_kv:
                if not self._start_kv_load(state):
                    break
                self._pop_front(queue)
                continue
            # Loaded remote-KV requests already hold their blocks; others start empty.
            hits: list[int] = []
            num_loaded = 0
            if not state.block_ids:
                max_hit_blocks = (state.num_tokens - 1) // self._kv.block_size_tokens
                hits = self._kv.find_prefix_hit(state, max_hit_blocks)
                num_loaded = self._kv.num_blocks_to_load(state, len(hits), max_hit_blocks)
            num_cached = (len(hits) + num_loaded) * self._kv.block_size_tokens
            num_new = min(state.num_uncomputed_tokens - num_cached, budget)
            if not self._kv.can_allocate(state, num_new, hits, num_loaded):
                break
            self._pop_front(queue)
            self._kv.allocate(state, num_new, hits, num_loaded)
            self._record_first_admission(state, num_cached, num_loaded * self._kv.block_size_tokens)
            batch.num_loaded_tokens += num_loaded * self._kv.block_size_tokens
            state.status = RequestStatus.RUNNING
            self.running.append(state)
            self._running_tokens_left += _running_tokens_left(state)
            batch.add(state, num_new)
            budget -= num_new
        return budget

    def _pop_front(self, queue: deque[RequestState]) -> None:
        state = queue.popleft()
        if queue is self.waiting:
            self._waiting_prompt_tokens -= _queued_prompt_tokens(state)

    def _start_kv_load(self, state: RequestState) -> bool:
        """Allocates blocks for a remote-KV prompt and queues its load; False if no room."""
        num_prompt = state.num_prompt_tokens
        hits = self._kv.find_prefix_hit(state, num_prompt // self._kv.block_size_tokens)
        num_to_load = num_prompt - len(hits) * self._kv.block_size_tokens
        if not self._kv.can_allocate(state, num_to_load, hits):
            return False
        self._kv.allocate(state, num_to_load, hits)
        self._record_first_admission(state, len(hits) * self._kv.block_size_tokens)
        state.status = RequestStatus.WAITING_FOR_KV
        self.kv_waiting[state.request_id] = state
        self._kv_loads.append(
            KvLoad(state.request_id, list(state.block_ids), len(hits), num_prompt)
        )
        return True

    def _record_first_admission(
        self, state: RequestState, num_cached_tokens: int, num_loaded_tokens: int = 0
    ) -> None:
        """Counts the prefix reuse of a request's first admission (`num_cached_tokens`,
        of which `num_loaded_tokens` came back from the host tier)."""
        if state.was_admitted:
            return
        state.was_admitted = True
        state.num_cached_tokens = num_cached_tokens
        self.prefix_query_tokens_total += state.num_prompt_tokens
        self.prefix_hit_tokens_total += num_cached_tokens
        self.host_hit_tokens_total += num_loaded_tokens

    # -- postprocess ------------------------------------------------------------

    def postprocess(
        self, batch: ScheduledBatch, sampled_token_ids: list[int | None]
    ) -> list[RequestOutput]:
        """Applies one step's results; `sampled_token_ids[i]` is None mid-prefill."""
        outputs: list[RequestOutput] = []
        num_left_running = 0
        num_tokens_done = 0  # prompt tokens computed and outputs sampled: in flight no more
        block_size = self._kv.block_size_tokens
        for state, num_new, token_id in zip(
            batch.requests, batch.num_new_tokens, sampled_token_ids, strict=True
        ):
            num_uncomputed = state.num_prompt_tokens - state.num_computed_tokens
            if num_uncomputed > 0:
                num_tokens_done += num_new if num_new < num_uncomputed else num_uncomputed
            num_computed = state.num_computed_tokens + num_new
            state.num_computed_tokens = num_computed
            if num_computed >= (state.num_registered_blocks + 1) * block_size:
                self._kv.cache_computed_blocks(state)
            if token_id is not None:
                num_tokens_done += 1
                if self._take_token(state, token_id, outputs):
                    num_left_running += 1
        self._running_tokens_left -= num_tokens_done
        if num_left_running:
            self.running = [state for state in self.running if state.is_running]
        return outputs

    def postprocess_decodes(
        self, states: list[RequestState], sampled_token_ids: list[int]
    ) -> list[RequestOutput]:
        """`postprocess` for a batch from `schedule_decodes` (each request fed 1 token)."""
        outputs: list[RequestOutput] = []
        append_output = outputs.append
        num_left_running = 0
        block_size = self._kv.block_size_tokens
        streams_tokens = self._streams_tokens
        for state, token_id in zip(states, sampled_token_ids, strict=True):
            num_computed = state.num_computed_tokens + 1
            state.num_computed_tokens = num_computed
            if num_computed >= (state.num_registered_blocks + 1) * block_size:
                self._kv.cache_computed_blocks(state)
            # `_take_token` inlined (it runs once per token of every answer).
            token_ids = state.token_ids
            token_ids.append(token_id)
            num_outputs = len(token_ids) - state.num_prompt_tokens
            request = state.request
            if (
                num_outputs < request.max_tokens
                and (request.ignore_eos or num_outputs < state.natural_length_tokens)
                and not request.prefill_only
            ):
                if streams_tokens or num_outputs == 1:
                    append_output(
                        RequestOutput(
                            request.request_id,
                            [token_id],
                            None,
                            state.num_cached_tokens,
                            state.num_prompt_tokens,
                            num_outputs == 1,
                        )
                    )
            else:
                self._leave_running(state, token_id, num_outputs, outputs)
                num_left_running += 1
        self._running_tokens_left -= len(states)
        if num_left_running:
            self.running = [state for state in self.running if state.is_running]
        return outputs

    def _take_token(self, state: RequestState, token_id: int, outputs: list[RequestOutput]) -> bool:
        """Appends a sampled token and its output; True if `state` left the running batch."""
        token_ids = state.token_ids
        token_ids.append(token_id)
        num_outputs = len(token_ids) - state.num_prompt_tokens
        request = state.request
        if (
            num_outputs < request.max_tokens
            and (request.ignore_eos or num_outputs < state.natural_length_tokens)
            and not request.prefill_only
        ):
            if self._streams_tokens or num_outputs == 1:
                outputs.append(
                    RequestOutput(
                        request.request_id,
                        [token_id],
                        None,
                        state.num_cached_tokens,
                        state.num_prompt_tokens,
                        num_outputs == 1,
                    )
                )
            return False
        self._leave_running(state, token_id, num_outputs, outputs)
        return True

    def _leave_running(
        self, state: RequestState, token_id: int, num_outputs: int, outputs: list[RequestOutput]
    ) -> None:
        """Outputs the token that ends `state`'s run (it stopped, reached max_tokens or is a
        prefill to hold), then finishes or holds it. The token is in `token_ids` already."""
        request = state.request
        reason = None
        if not request.ignore_eos and num_outputs >= state.natural_length_tokens:
            reason = FinishReason.STOP
        elif num_outputs >= request.max_tokens:
            reason = FinishReason.LENGTH
        outputs.append(
            RequestOutput(
                request.request_id,
                [token_id],
                reason,
                state.num_cached_tokens,
                state.num_prompt_tokens,
                num_outputs == 1,
            )
        )
        self._running_tokens_left -= _running_tokens_left(state)
        if request.prefill_only:
            self._hold(state, reason)
        else:
            assert reason is not None  # only a held prefill leaves without one
            self._finish(state, reason)

    def _hold(self, state: RequestState, reason: FinishReason | None) -> None:
        state.status = RequestStatus.HOLDING_KV
        state.finish_reason = reason
        self.held[state.request_id] = state

    def _finish(self, state: RequestState, reason: FinishReason) -> None:
        self._kv.free(state)
        state.status = RequestStatus.FINISHED
        state.finish_reason = reason
        del self.requests[state.request_id]

    # -- remote KV, holds and aborts ---------------------------------------------

    def take_kv_loads(self) -> list[KvLoad]:
        loads, self._kv_loads = self._kv_loads, []
        return loads

    def finish_kv_load(self, state: RequestState, ok: bool) -> None:
        """Marks a remote-KV request loaded (ready to decode) or failed (freed)."""
        del self.kv_waiting[state.request_id]
        if not ok:
            self._finish(state, FinishReason.ERROR)
            return
        state.num_computed_tokens = state.num_prompt_tokens
        state.needs_remote_kv = False
        self._kv.cache_computed_blocks(state)
        state.status = RequestStatus.WAITING
        self.loaded.append(state)

    def release(self, state: RequestState) -> None:
        """Frees a held prefill's blocks (they stay cached)."""
        del self.held[state.request_id]
        self._kv.free(state)
        state.status = RequestStatus.FINISHED
        del self.requests[state.request_id]

    def abort(self, state: RequestState) -> None:
        """Removes `state` from wherever it is and frees its blocks."""
        status = state.status
        if status is RequestStatus.RUNNING:
            self.running.remove(state)
            self._running_tokens_left -= _running_tokens_left(state)
        elif status is RequestStatus.WAITING_FOR_KV:
            del self.kv_waiting[state.request_id]
            self._kv_loads = [
                load for load in self._kv_loads if load.request_id != state.request_id
            ]
        elif status is RequestStatus.HOLDING_KV:
            del self.held[state.request_id]
        elif state.block_ids:  # waiting with blocks: its remote KV has arrived
            self.loaded.remove(state)
        else:
            self.waiting.remove(state)
            self._waiting_prompt_tokens -= _queued_prompt_tokens(state)
        self._kv.free(state)
        state.status = RequestStatus.FINISHED
        del self.requests[state.request_id]

    def num_tokens_in_flight(self) -> int:
        """Uncomputed prompt tokens of queued and running requests + running ones' outputs left."""
        total = self._waiting_prompt_tokens + self._running_tokens_left
        for state in self.loaded:
            total += _queued_prompt_tokens(state)
        return total


def _running_tokens_left(state: RequestState) -> int:
    """A running request's share of `num_tokens_in_flight`: its uncomputed prompt tokens
    and the outputs it may still produce (never negative: a running request finishes
    when it reaches max_tokens)."""
    num_prompt = state.num_prompt_tokens
    uncomputed = num_prompt - state.num_computed_tokens
    num_outputs_left = state.request.max_tokens - (len(state.token_ids) - num_prompt)
    return (uncomputed if uncomputed > 0 else 0) + num_outputs_left


def _queued_prompt_tokens(state: RequestState) -> int:
    """A queued request's share of `num_tokens_in_flight`: its uncomputed prompt tokens
    (none while its KV is still to be pulled from a prefill worker)."""
    uncomputed = state.num_prompt_tokens - state.num_computed_tokens
    return uncomputed if uncomputed > 0 and not state.needs_remote_kv else 0
