"""The router's one routing history: which prompts it sent to which worker.

Every reader of the history (the prefix scorers, and the dispatcher's estimate of
what a worker without KV events caches) reads this one record, and it is written in
one place: `Scheduler.sent`, which the router and the simulator both call once per
request really sent. A reader asks for an `ApproximatePrefixIndex` with its LRU size
and TTL; readers asking the same parameters share one index, and each index is
written once a pick. Parameters differ only between peer profiles (llm-d's LRU never
expires, Dynamo's does after 120 s): each such profile then keeps its own index, as
the project it reproduces does.

No reader, no index, no cost: a policy that scores without history, on workers that
publish KV events, records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.approx_prefix_index import (
    DYNAMO_TTL_S,
    LLMD_CAPACITY_BLOCKS_PER_WORKER,
    ApproximatePrefixIndex,
)


class RoutingHistory:
    """The indexes of one router (or simulation), one per (LRU size, TTL, prefix blocks)
    asked for."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        # (LRU size, TTL, leading blocks kept) → the index, written with that many blocks.
        self._indexes: dict[tuple[int, float, int | None], ApproximatePrefixIndex] = {}

    def index(
        self,
        capacity_blocks_per_worker: int = LLMD_CAPACITY_BLOCKS_PER_WORKER,
        ttl_s: float = DYNAMO_TTL_S,
        max_prefix_blocks: int | None = None,
    ) -> ApproximatePrefixIndex:
        """The index with these parameters, created (empty) when first asked for; with
        `max_prefix_blocks` it records only a prompt's first that many blocks (llm-d
        hashes no further), else the whole prompt."""
        key = (capacity_blocks_per_worker, ttl_s, max_prefix_blocks)
        index = self._indexes.get(key)
        if index is None:
            index = ApproximatePrefixIndex(
                self._clock, capacity_blocks_per_worker=capacity_blocks_per_worker, ttl_s=ttl_s
            )
            self._indexes[key] = index
        return index

    def estimates(self) -> ApproximatePrefixIndex:
        """The index the router's own estimates read (cached prompt blocks of a worker
        without KV events): the first one a plugin asked for that keeps whole prompts
        (a capped one would understate a long prompt's hit), else the defaults' (created
        now: it holds the picks recorded from then on)."""
        for (_, _, max_blocks), index in self._indexes.items():
            if max_blocks is None:
                return index
        return self.index()

    def record(self, worker_id: str, block_hashes: Sequence[BlockHash]) -> None:
        """Notes that `worker_id` was just sent `block_hashes`, in every index."""
        for (_, _, max_blocks), index in self._indexes.items():
            index.record(
                worker_id, block_hashes if max_blocks is None else block_hashes[:max_blocks]
            )
