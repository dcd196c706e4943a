"""DualMap's hotspot rebalancing: move held-back requests to their other candidate.

DualMap (Yuan et al., ICLR 2026, arXiv:2602.06502) gives every request two
candidate workers. When the
router holds requests back (not yet sent), the ones queued on a hotspot may be
moved to their other candidate; only queued requests move, never KV.

The rule, exactly (pure, deterministic), after the paper's hotspot-aware rebalancing
(selective, non-recursive migration within each request's two candidates):

1. Each worker's held requests form a FIFO queue behind the work already on the
   worker. A held request's predicted TTFT is `predict_ttft_ms` with the
   uncached tokens of the held requests ahead of it added to the worker's queue.
   A worker's predicted queue delay is the TTFT of its last held request.
2. Visit workers from the highest queue delay down (ties: worker id). On the
   first worker that has one, take the LAST held request (scanning back to
   front) whose TTFT at the back of its other candidate's queue is strictly
   lower than its TTFT where it is, and move it there.
3. Repeat until no request can move, each request moving at most once.

Every move is a Pareto improvement: the mover gets a lower TTFT, requests behind
it on the hotspot move up, and it joins the other queue at the back, so nobody
there waits longer (prediction is monotone in queued tokens). Scanning from the
back moves the requests with most to gain and keeps the rest in arrival order.
Cost: O(moves · (workers · log workers + held requests)) predictions at worst;
workers found with nothing to move are skipped until something they depend on changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from triskel.router.scheduling.producers.latency_predictor import (
    predict_ttft_ms,
    queued_prefill_tokens,
)
from triskel.router.scheduling.types import ActiveLoad, Endpoint


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A request held by the router for `worker_id`, one of its two `candidate_ids`.

    `num_uncached_tokens[i]` is the prompt tokens not cached on `candidate_ids[i]`.
    The held requests must not be counted in the endpoints' loads yet.
    """

    request_id: str
    worker_id: str
    candidate_ids: tuple[str, str]
    num_uncached_tokens: tuple[int, int]

    def __post_init__(self) -> None:
        if self.worker_id not in self.candidate_ids:
            raise ValueError(
                f"queued request {self.request_id}: worker_id {self.worker_id!r} is not one "
                f"of candidate_ids {self.candidate_ids}"
            )
        if min(self.num_uncached_tokens) < 0:
            raise ValueError(
                f"queued request {self.request_id}: num_uncached_tokens must be >= 0, "
                f"got {self.num_uncached_tokens}"
            )

    def uncached_on(self, worker_id: str) -> int:
        return self.num_uncached_tokens[self.candidate_ids.index(worker_id)]

    @property
    def other_id(self) -> str:
        first, second = self.candidate_ids
        return second if self.worker_id == first else first


@dataclass(frozen=True, slots=True)
class Move:
    """Send `request_id` to `to_worker_id` instead of `from_worker_id`."""

    request_id: str
    from_worker_id: str
    to_worker_id: str
    ttft_before_ms: float
    ttft_after_ms: float


def ttft_behind_ms(endpoint: Endpoint, num_tokens_ahead: int, num_uncached_tokens: int) -> float:
    """Predicted TTFT of a request behind `num_tokens_ahead` held tokens on `endpoint`."""
    if num_tokens_ahead == 0:
        return predict_ttft_ms(endpoint, num_uncached_tokens)
    active = endpoint.active
    queued = queued_prefill_tokens(endpoint) + num_tokens_ahead
    # Built directly, not with dataclasses.replace: this runs thousands of times per plan.
    busier = Endpoint(
        endpoint.worker_id,
        endpoint.model,
        endpoint.block_size_tokens,
        endpoint.load,
        ActiveLoad(active.num_requests, queued, active.num_decode_blocks),
        endpoint.profile,
    )
    return predict_ttft_ms(busier, num_uncached_tokens)


def plan_rebalance(
    queued: Sequence[QueuedRequest], endpoints_by_id: Mapping[str, Endpoint]
) -> list[Move]:
    """The moves, in the order to apply them (see the module docstring for the rule).

    `queued` is in arrival order. ValueError names a request whose candidate has no
    endpoint.
    """
    for request in queued:
        for worker_id in request.candidate_ids:
            if worker_id not in endpoints_by_id:
                raise ValueError(
                    f"queued request {request.request_id}: candidate {worker_id!r} has no "
                    "endpoint in endpoints_by_id"
                )
    held = _HeldQueues(queued, endpoints_by_id)
    # A worker with nothing to move stays so until its queue changes or a worker its
    # requests could move to gets lighter (only a move's source does).
    stuck: set[str] = set()
    moves: list[Move] = []
    while True:
        move = None
        for worker_id in held.hottest_first():
            if worker_id not in stuck:
                move = held.helpful_move(worker_id)
                if move is not None:
                    break
                stuck.add(worker_id)
        if move is None:
            return moves
        held.apply(move)
        stuck -= {move.from_worker_id, move.to_worker_id} | held.pointing_at(move.from_worker_id)
        moves.append(move)


class _HeldQueues:
    """The held requests per worker, their token totals and queue delays, as moves apply."""

    def __init__(
        self, queued: Sequence[QueuedRequest], endpoints_by_id: Mapping[str, Endpoint]
    ) -> None:
        self._endpoints = endpoints_by_id
        self._queues: dict[str, list[QueuedRequest]] = {}
        self._tokens: dict[str, int] = {}
        self._pointing_at: dict[str, set[str]] = {}
        self._moved: set[str] = set()
        for request in queued:
            here = request.worker_id
            self._queues.setdefault(here, []).append(request)
            self._tokens[here] = self._tokens.get(here, 0) + request.uncached_on(here)
            self._pointing_at.setdefault(request.other_id, set()).add(here)
        # Only a move's two workers change, so delays are recomputed for those alone.
        self._delays_ms = {w: self._queue_delay_ms(w) for w in self._queues}

    def hottest_first(self) -> list[str]:
        """Workers holding requests, by predicted queue delay, highest first (ties: id)."""
        delays_ms = self._delays_ms
        return sorted(delays_ms, key=lambda w: (-delays_ms[w], w))

    def pointing_at(self, worker_id: str) -> set[str]:
        """Workers holding a request whose other candidate is `worker_id`."""
        return self._pointing_at.get(worker_id, set())

    def helpful_move(self, worker_id: str) -> Move | None:
        """The last request on `worker_id` that would get a lower TTFT on its other one."""
        queue = self._queues[worker_id]
        endpoint = self._endpoints[worker_id]
        behind = 0  # held tokens at and after the scanned position
        for request in reversed(queue):
            tokens_here = request.uncached_on(worker_id)
            behind += tokens_here
            target = request.other_id
            if request.request_id in self._moved or target == worker_id:
                continue
            here_ms = ttft_behind_ms(endpoint, self._tokens[worker_id] - behind, tokens_here)
            there_ms = ttft_behind_ms(
                self._endpoints[target], self._tokens.get(target, 0), request.uncached_on(target)
            )
            if there_ms < here_ms:
                return Move(request.request_id, worker_id, target, here_ms, there_ms)
        return None

    def apply(self, move: Move) -> None:
        source, target = move.from_worker_id, move.to_worker_id
        queue = self._queues[source]
        request = queue.pop(next(i for i, r in enumerate(queue) if r.request_id == move.request_id))
        self._tokens[source] -= request.uncached_on(source)
        self._queues.setdefault(target, []).append(replace(request, worker_id=target))
        self._tokens[target] = self._tokens.get(target, 0) + request.uncached_on(target)
        self._moved.add(move.request_id)
        for worker_id in (source, target):
            if self._queues[worker_id]:
                self._delays_ms[worker_id] = self._queue_delay_ms(worker_id)
            else:
                self._delays_ms.pop(worker_id, None)

    def _queue_delay_ms(self, worker_id: str) -> float:
        """The predicted TTFT of the worker's last held request."""
        tokens = self._queues[worker_id][-1].uncached_on(worker_id)
        return ttft_behind_ms(self._endpoints[worker_id], self._tokens[worker_id] - tokens, tokens)
