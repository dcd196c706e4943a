"""Where each of an engine's requests is between steps, and the moves that are not
scheduling decisions.

    add ─▶ waiting ──admit──▶ running ──finish──▶ (gone)
             ▲  │               │  └──hold──▶ held ──release──▶ (gone)
             │  │               │             (prefill_only: KV kept for a decode worker)
             │  └─admit─▶ kv_waiting ──finish_kv_load──▶ loaded ──admit──▶ running
             └─────preempt──────┘      (remote KV being pulled)

The scheduler decides who is admitted and who is preempted; this class keeps the
queues, the token counts load reports read, and makes the other moves: holds and
their release, remote-KV loads, aborts (from any queue) and finishes. A request that
leaves for good frees its blocks; cached ones stay as prefix hits.
"""

from __future__ import annotations

from collections import deque

from triskel.workers.engine.kv_cache_manager import KvCacheManager
from triskel.workers.engine.outputs import KvLoad
from triskel.workers.engine.request import FinishReason, RequestState, RequestStatus


class RequestQueues:
    __slots__ = (
        "_kv",
        "_kv_loads",
        "_num_running_tokens_left",
        "_num_waiting_prompt_tokens",
        "held",
        "kv_waiting",
        "loaded",
        "requests",
        "running",
        "waiting",
    )

    def __init__(self, kv: KvCacheManager) -> None:
        self._kv = kv
        self.requests: dict[str, RequestState] = {}
        self.waiting: deque[RequestState] = deque()
        # Loaded remote-KV requests, ready to decode: their prompt is computed, so they
        # count no tokens in flight until admitted.
        self.loaded: deque[RequestState] = deque()
        # In admission order: preemption takes from the end.
        self.running: list[RequestState] = []
        self.kv_waiting: dict[str, RequestState] = {}
        self.held: dict[str, RequestState] = {}
        self._kv_loads: list[KvLoad] = []
        # `_num_queued_prompt_tokens` summed over `waiting`, kept as requests enter and
        # leave it (a waiting request's share does not change), so load reports need no
        # walk of a queue that can hold thousands of requests.
        self._num_waiting_prompt_tokens = 0
        # `_num_running_tokens_left` summed over `running`, kept as requests enter, advance
        # and leave it: load reports are read after every step, and walking a batch of
        # hundreds each time cost a tenth of a simulated run.
        self._num_running_tokens_left = 0

    @property
    def has_schedulable_requests(self) -> bool:
        return bool(self.running or self.waiting or self.loaded)

    def num_tokens_in_flight(self) -> int:
        """Uncomputed prompt tokens of queued and running requests + running ones' outputs
        left (`loaded` adds none: see there)."""
        return self._num_waiting_prompt_tokens + self._num_running_tokens_left

    # -- moves the scheduler makes ----------------------------------------------------

    def add(self, state: RequestState) -> None:
        self.requests[state.request_id] = state
        self.waiting.append(state)
        self._num_waiting_prompt_tokens += _num_queued_prompt_tokens(state)

    def pop_front(self, queue: deque[RequestState]) -> RequestState:
        """Takes the head of `waiting` or `loaded` (being admitted)."""
        state = queue.popleft()
        if queue is self.waiting:
            self._num_waiting_prompt_tokens -= _num_queued_prompt_tokens(state)
        return state

    def start_running(self, state: RequestState) -> None:
        """`state`, admitted and given its blocks, joins the end of the running batch."""
        state.status = RequestStatus.RUNNING
        self.running.append(state)
        self._num_running_tokens_left += _num_running_tokens_left(state)

    def pop_newest_running(self) -> RequestState:
        """Takes the most recently admitted running request (to preempt it)."""
        state = self.running.pop()
        self._num_running_tokens_left -= _num_running_tokens_left(state)
        return state

    def requeue(self, state: RequestState) -> None:
        """A preempted request (blocks freed, nothing computed) goes first in line."""
        self.waiting.appendleft(state)
        self._num_waiting_prompt_tokens += _num_queued_prompt_tokens(state)

    def wait_for_kv(self, state: RequestState, load: KvLoad) -> None:
        """`state` holds blocks for its whole prompt; `load` fills them (`take_kv_loads`)."""
        state.status = RequestStatus.WAITING_FOR_KV
        self.kv_waiting[state.request_id] = state
        self._kv_loads.append(load)

    def count_tokens_done(self, num_tokens: int) -> None:
        """`num_tokens` prompt tokens of running requests were computed, or outputs sampled,
        this step: they are in flight no more."""
        self._num_running_tokens_left -= num_tokens

    def leave_running(self, state: RequestState, reason: FinishReason | None) -> None:
        """`state` produced its last token: a prefill_only request holds its KV, others
        finish. It stays in `running` until `drop_left_running`."""
        self._num_running_tokens_left -= _num_running_tokens_left(state)
        if state.request.prefill_only:
            state.status = RequestStatus.HOLDING_KV
            state.finish_reason = reason
            self.held[state.request_id] = state
        else:
            assert reason is not None  # only a held prefill leaves without one
            state.finish_reason = reason
            self._forget(state)

    def drop_left_running(self) -> None:
        """Removes the requests `leave_running` was told of from `running` (in one pass
        per step, not one per request)."""
        self.running = [state for state in self.running if state.is_running]

    # -- moves from outside the step ----------------------------------------------------

    def take_kv_loads(self) -> list[KvLoad]:
        """Remote KV pulls to start, queued since the last call."""
        loads, self._kv_loads = self._kv_loads, []
        return loads

    def finish_kv_load(self, state: RequestState, ok: bool) -> None:
        """Marks a remote-KV request loaded (ready to decode) or failed (finished, freed)."""
        del self.kv_waiting[state.request_id]
        if not ok:
            state.finish_reason = FinishReason.ERROR
            self._forget(state)
            return
        state.num_computed_tokens = state.num_prompt_tokens
        state.needs_remote_kv = False
        self._kv.cache_computed_blocks(state)
        state.status = RequestStatus.WAITING
        self.loaded.append(state)

    def release(self, state: RequestState) -> None:
        """Frees a held prefill's blocks (they stay cached)."""
        del self.held[state.request_id]
        self._forget(state)

    def abort(self, state: RequestState) -> None:
        """Removes `state` from wherever it is and frees its blocks."""
        status = state.status
        if status is RequestStatus.RUNNING:
            self.running.remove(state)
            self._num_running_tokens_left -= _num_running_tokens_left(state)
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
            self._num_waiting_prompt_tokens -= _num_queued_prompt_tokens(state)
        self._forget(state)

    def _forget(self, state: RequestState) -> None:
        """Frees `state`'s blocks and drops it: it is finished."""
        self._kv.free(state)
        state.status = RequestStatus.FINISHED
        del self.requests[state.request_id]


def _num_running_tokens_left(state: RequestState) -> int:
    """A running request's share of `num_tokens_in_flight`: its uncomputed prompt tokens
    and the outputs it may still produce (never negative: a running request finishes
    when it reaches max_tokens)."""
    num_prompt = state.num_prompt_tokens
    uncomputed = num_prompt - state.num_computed_tokens
    num_outputs_left = state.request.max_tokens - (len(state.token_ids) - num_prompt)
    return (uncomputed if uncomputed > 0 else 0) + num_outputs_left


def _num_queued_prompt_tokens(state: RequestState) -> int:
    """A waiting request's share of `num_tokens_in_flight`: its uncomputed prompt tokens
    (none while its KV is still to be pulled from a prefill worker)."""
    uncomputed = state.num_prompt_tokens - state.num_computed_tokens
    return uncomputed if uncomputed > 0 and not state.needs_remote_kv else 0
