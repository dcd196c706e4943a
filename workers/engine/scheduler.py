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
   (`RequestQueues.take_kv_loads` / `finish_kv_load`) without using the budget.

After the model runs, `postprocess` advances every scheduled request, caches
its newly full blocks, appends sampled tokens and finishes or holds requests.
The queues, and every move that is not a scheduling decision, are `RequestQueues`'.
"""

from __future__ import annotations

from collections import deque

from triskel.workers.engine.batch import ScheduledBatch
from triskel.workers.engine.kv_cache_manager import KvCacheManager
from triskel.workers.engine.outputs import KvLoad, RequestOutput
from triskel.workers.engine.request import FinishReason, RequestState, RequestStatus
from triskel.workers.engine.request_queues import RequestQueues


class Scheduler:
    """Decides each step's batch from `RequestQueues` and applies its results; reaches KV
    blocks only through the `KvCacheManager`."""

    __slots__ = (
        "_is_streaming",
        "_kv",
        "_max_num_batched_tokens",
        "_max_num_seqs",
        "_queues",
        "finished_total",
        "host_hit_tokens_total",
        "num_preemptions_total",
        "prefix_hit_tokens_total",
        "prefix_query_tokens_total",
    )

    def __init__(
        self,
        kv: KvCacheManager,
        queues: RequestQueues,
        max_num_batched_tokens: int,
        max_num_seqs: int,
        streams_tokens: bool = True,
    ) -> None:
        self._kv = kv
        self._queues = queues
        # False: no output for a token that neither starts nor ends its request.
        self._is_streaming = streams_tokens
        self._max_num_batched_tokens = max_num_batched_tokens
        self._max_num_seqs = max_num_seqs
        self.prefix_query_tokens_total = 0
        self.prefix_hit_tokens_total = 0
        self.host_hit_tokens_total = 0
        self.num_preemptions_total = 0
        # Requests that ran to their end, by finish reason (vLLM's request_success_total).
        self.finished_total: dict[str, int] = {}

    def set_limits(self, max_num_batched_tokens: int, max_num_seqs: int) -> None:
        """Batching limits from the next step on. Requests already running stay running
        when there are more than a smaller `max_num_seqs`: admission waits until the
        batch fits again."""
        self._max_num_batched_tokens = max_num_batched_tokens
        self._max_num_seqs = max_num_seqs

    # -- schedule ---------------------------------------------------------------

    def schedule(self) -> ScheduledBatch:
        batch = ScheduledBatch()
        budget = self._schedule_running(batch, self._max_num_batched_tokens)
        # A step that had to preempt has no blocks to spare: newcomers would only push
        # out the running requests again.
        if batch.num_preempted == 0:
            budget = self._admit(self._queues.loaded, batch, budget)
            self._admit(self._queues.waiting, batch, budget)
        return batch

    def schedule_decodes(self) -> list[RequestState] | None:
        """The running batch, if this step is nothing but its decodes; else None.

        That is the decision `schedule` would make when nothing waits to be admitted
        and every running request feeds the one token it sampled last: each is fed 1
        token, a request whose token starts a new block gets one (in batch order, as
        `schedule` allocates), and nobody is preempted or admitted. Most steps are
        such steps, so they skip building a `ScheduledBatch`.
        """
        queues = self._queues
        running = queues.running
        if not running or queues.waiting or queues.loaded:
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
        running = self._queues.running
        scheduled = batch.requests
        num_new_tokens = batch.num_new_tokens
        index = 0
        # `running` shrinks from the end as `_make_room` preempts.
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
            victim = self._queues.pop_newest_running()
            self._preempt(victim)
            batch.num_preempted += 1
            if victim is state:
                return False
        return True

    def _preempt(self, state: RequestState) -> None:
        self._kv.free(state)
        state.num_computed_tokens = 0
        state.status = RequestStatus.PREEMPTED
        self._queues.requeue(state)
        self.num_preemptions_total += 1

    def _admit(self, queue: deque[RequestState], batch: ScheduledBatch, budget: int) -> int:
        queues = self._queues
        kv = self._kv
        block_size = kv.block_size_tokens
        while queue and budget > 0 and len(queues.running) < self._max_num_seqs:
            state = queue[0]
            if state.needs_remote_kv:
                if not self._start_kv_load(state):
                    break
                queues.pop_front(queue)
                continue
            # Loaded remote-KV requests already hold their blocks; others start empty.
            hits: list[int] = []
            num_loaded = 0
            if not state.block_ids:
                # The last known token is always fed: its logits give the next token.
                max_hit_blocks = (state.num_tokens - 1) // block_size
                hits = kv.find_prefix_hit(state, max_hit_blocks)
                num_loaded = kv.num_blocks_to_load(state, len(hits), max_hit_blocks)
            num_cached = (len(hits) + num_loaded) * block_size
            num_new = min(state.num_uncomputed_tokens - num_cached, budget)
            if not kv.can_allocate(state, num_new, hits, num_loaded):
                break  # in order: who is next waits for room, nobody overtakes it
            queues.pop_front(queue)
            kv.allocate(state, num_new, hits, num_loaded)
            self._record_first_admission(state, num_cached, num_loaded * block_size)
            batch.num_loaded_tokens += num_loaded * block_size
            queues.start_running(state)
            batch.add(state, num_new)
            budget -= num_new
        return budget

    def _start_kv_load(self, state: RequestState) -> bool:
        """Allocates blocks for a remote-KV prompt and queues its load; False if no room."""
        kv = self._kv
        num_prompt = state.num_prompt_tokens
        hits = kv.find_prefix_hit(state, num_prompt // kv.block_size_tokens)
        num_to_load = num_prompt - len(hits) * kv.block_size_tokens
        if not kv.can_allocate(state, num_to_load, hits):
            return False
        kv.allocate(state, num_to_load, hits)
        self._record_first_admission(state, len(hits) * kv.block_size_tokens)
        load = KvLoad(state.request_id, list(state.block_ids), len(hits), num_prompt)
        self._queues.wait_for_kv(state, load)
        return True

    def _record_first_admission(
        self, state: RequestState, num_cached_tokens: int, num_loaded_tokens: int = 0
    ) -> None:
        """Counts the prefix reuse of a request's first admission (`num_cached_tokens`,
        of which `num_loaded_tokens` came back from the host tier); a preempted request's
        readmission is no new query."""
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
        self._queues.count_tokens_done(num_tokens_done)
        if num_left_running:
            self._queues.drop_left_running()
        return outputs

    def postprocess_decodes(
        self, states: list[RequestState], sampled_token_ids: list[int]
    ) -> list[RequestOutput]:
        """`postprocess` for a batch from `schedule_decodes` (each request fed 1 token)."""
        outputs: list[RequestOutput] = []
        num_left_running = 0
        block_size = self._kv.block_size_tokens
        take_token = self._take_token
        for state, token_id in zip(states, sampled_token_ids, strict=True):
            num_computed = state.num_computed_tokens + 1
            state.num_computed_tokens = num_computed
            if num_computed >= (state.num_registered_blocks + 1) * block_size:
                self._kv.cache_computed_blocks(state)
            if take_token(state, token_id, outputs):
                num_left_running += 1
        self._queues.count_tokens_done(len(states))
        if num_left_running:
            self._queues.drop_left_running()
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
            if self._is_streaming or num_outputs == 1:
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
        # A prefill held for its decode ends as vLLM's one-token prefill does: "length".
        counted = FinishReason.LENGTH.value if reason is None else reason.value
        self.finished_total[counted] = self.finished_total.get(counted, 0) + 1
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
        self._queues.leave_running(state, reason)
