"""The router's bounded per-worker hold of prefills, rebalanced as DualMap describes.

DualMap (Yuan et al., ICLR 2026, arXiv:2602.06502) gives each request two candidate
workers; a request already sent waits in that worker's own queue, where nothing can move
it. Held in the router while the worker is busy, it keeps its second candidate: when a
hotspot forms, `plan_rebalance` moves held requests there. Pure, with no clock: the
router and the simulator each own one and call it at the same points — a prefill about
to be sent (`offer`) and whenever a worker may have room again (`ready`).

    busy       the worker has at least one step's budget of prefill tokens queued (the
               router's count or the worker's report, the larger): a request sent now
               would only wait in the engine's queue
    hold       a prefill for a busy worker waits here, first in first out per worker, at
               most `maxPerWorker` of them (beyond that it is sent: the hold is bounded)
    rebalance  after each new hold, the paper's plan over everything held: from the
               hottest worker down, a held request moves to its other candidate where that
               lowers its predicted TTFT (each request once)
    release    `ready` hands back held requests whose worker is no longer busy, oldest
               first, counting each one's tokens on its worker as it goes
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from triskel.router.scheduling.plugins.dualmap.rebalance import QueuedRequest, plan_rebalance
from triskel.router.scheduling.producers.latency_predictor import queued_prefill_tokens
from triskel.router.scheduling.types import Decision, Endpoint

# A worker reporting no profile: vLLM's default step budget (max_num_batched_tokens).
_DEFAULT_STEP_TOKENS = 8192


class PrefillHold:
    """The held prefills of one router (or one simulation)."""

    __slots__ = ("_held", "_max_per_worker", "num_moves")

    def __init__(self, max_per_worker: int) -> None:
        if max_per_worker < 1:
            raise ValueError(f"max_per_worker: must be >= 1, got {max_per_worker}")
        self._max_per_worker = max_per_worker
        # In arrival order: the order `plan_rebalance` and the release keep.
        self._held: list[QueuedRequest] = []
        self.num_moves = 0
        """Requests moved to their other candidate so far (for metrics and reports)."""

    @property
    def max_per_worker(self) -> int:
        return self._max_per_worker

    def __len__(self) -> int:
        return len(self._held)

    def offer(self, request: QueuedRequest, endpoints: Mapping[str, Endpoint]) -> bool:
        """Whether `request` must wait (True: held; the caller sends it once `ready`
        hands it back, perhaps for its other candidate). `endpoints` covers both its
        candidates and every held request's."""
        worker_id = request.worker_id
        endpoint = endpoints.get(worker_id)
        if endpoint is None:
            return False  # left since its pick: the call fails and is retried
        num_held = sum(1 for h in self._held if h.worker_id == worker_id)
        # Behind requests held for the worker, a new one waits its turn (first in, first out).
        if not num_held and not _is_busy(endpoint, 0):
            return False
        if num_held >= self._max_per_worker:
            return False
        self._held.append(request)
        # Only requests whose candidates both serve can move (a worker may have left).
        movable = [h for h in self._held if all(c in endpoints for c in h.candidate_ids)]
        moves = plan_rebalance(movable, endpoints)
        if moves:
            moved = {m.request_id: m.to_worker_id for m in moves}
            self._held = [
                replace(h, worker_id=moved[h.request_id]) if h.request_id in moved else h
                for h in self._held
            ]
            self.num_moves += len(moves)
        return True

    def ready(self, endpoints: Mapping[str, Endpoint]) -> list[QueuedRequest]:
        """Held requests to send now (each for its `worker_id`), removed from the hold."""
        released: list[QueuedRequest] = []
        kept: list[QueuedRequest] = []
        sent_tokens: dict[str, int] = {}
        blocked: set[str] = set()  # a worker's later requests wait behind its first held
        for request in self._held:
            worker_id = request.worker_id
            tokens = sent_tokens.get(worker_id, 0)
            endpoint = endpoints.get(worker_id)
            # A worker that left: sent anyway, its call fails and is retried elsewhere.
            if worker_id in blocked or (endpoint is not None and _is_busy(endpoint, tokens)):
                blocked.add(worker_id)
                kept.append(request)
                continue
            sent_tokens[worker_id] = tokens + request.uncached_on(worker_id)
            released.append(request)
        self._held = kept
        return released

    def forget(self, request_id: str) -> bool:
        """Drops a held request (its client left); whether it was held."""
        before = len(self._held)
        self._held = [h for h in self._held if h.request_id != request_id]
        return len(self._held) != before


def runner_up(decision: Decision) -> str | None:
    """The pick's second candidate: the best-scored other worker the picker chose among
    (DualMap's other ring owner); None when it had no other."""
    chosen = decision.endpoint.worker_id
    others = [s for s in decision.scored if s.endpoint.worker_id != chosen]
    if not others:
        return None
    return max(others, key=lambda s: s.score).endpoint.worker_id


def _is_busy(endpoint: Endpoint, extra_tokens: int) -> bool:
    """At least one step's budget queued, counting `extra_tokens` about to be sent."""
    budget = (
        _DEFAULT_STEP_TOKENS
        if endpoint.profile is None
        else endpoint.profile.max_num_batched_tokens
    )
    return queued_prefill_tokens(endpoint) + extra_tokens >= budget
