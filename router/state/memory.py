"""In-memory shared state: what one router knows on its own.

Used when no Redis is configured, and as the fallback (and this router's own
share) when Redis is. The synchronous methods (`apply`, `snapshot`, ...) are the
core; the async ones satisfy the Protocols.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from triskel.common.hashing import BlockHash
from triskel.router.state.config import StateConfig
from triskel.router.state.protocols import LoadCounts


class MemoryLoadLedger:
    """This router's load per worker; exact, and never expires (this router is alive)."""

    def __init__(self) -> None:
        self._by_worker: dict[str, LoadCounts] = {}

    def apply(self, worker_id: str, delta: LoadCounts) -> None:
        counts = self._by_worker.get(worker_id, LoadCounts()) + delta
        if counts.is_zero:
            self._by_worker.pop(worker_id, None)  # keep only workers with work in flight
        else:
            self._by_worker[worker_id] = counts

    def get(self, worker_id: str) -> LoadCounts:
        return self._by_worker.get(worker_id, LoadCounts())

    def snapshot(self, worker_ids: Sequence[str]) -> dict[str, LoadCounts]:
        return {worker_id: self.get(worker_id) for worker_id in worker_ids}

    def nonzero(self) -> dict[str, LoadCounts]:
        """Every worker this router has work on."""
        return dict(self._by_worker)

    async def add(self, worker_id: str, delta: LoadCounts) -> None:
        self.apply(worker_id, delta)

    async def totals(self, worker_ids: Sequence[str]) -> dict[str, LoadCounts]:
        return self.snapshot(worker_ids)

    async def heartbeat(self) -> None:
        pass


class MemoryWorkerRegistry:
    """The workers this router itself announced, per model."""

    def __init__(self) -> None:
        self._by_model: dict[str, set[str]] = {}

    def add(self, model: str, worker_id: str) -> None:
        self._by_model.setdefault(model, set()).add(worker_id)

    def remove(self, model: str, worker_id: str) -> None:
        workers = self._by_model.get(model)
        if workers is not None:
            workers.discard(worker_id)
            if not workers:
                del self._by_model[model]

    def snapshot(self, model: str) -> list[str]:
        return sorted(self._by_model.get(model, ()))

    def by_model(self) -> dict[str, list[str]]:
        return {model: sorted(workers) for model, workers in self._by_model.items()}

    async def register(self, model: str, worker_id: str) -> None:
        self.add(model, worker_id)

    async def deregister(self, model: str, worker_id: str) -> None:
        self.remove(model, worker_id)

    async def members(self, model: str) -> list[str]:
        return self.snapshot(model)

    async def heartbeat(self) -> None:
        pass


class MemoryPrefixHistory:
    """(worker, block hash) records with a TTL, oldest dropped beyond a capacity.

    Records are kept in refresh order; every record has the same TTL, so the oldest
    is also the first to expire, and expired ones are dropped from the front.
    """

    def __init__(self, config: StateConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = config.prefix_ttl_s
        self._capacity = config.memory_prefix_capacity
        self._clock = clock
        self._expiry_s: OrderedDict[tuple[str, BlockHash], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry_s)

    def record_now(self, worker_id: str, block_hashes: Sequence[BlockHash]) -> None:
        now_s = self._clock()
        expires_s = now_s + self._ttl_s
        for block_hash in block_hashes:
            key = (worker_id, block_hash)
            self._expiry_s[key] = expires_s
            self._expiry_s.move_to_end(key)
        while self._expiry_s:
            oldest_key, oldest_expiry_s = next(iter(self._expiry_s.items()))
            if oldest_expiry_s > now_s and len(self._expiry_s) <= self._capacity:
                break
            del self._expiry_s[oldest_key]

    def match_now(self, block_hashes: Sequence[BlockHash], worker_ids: Sequence[str]) -> list[int]:
        now_s = self._clock()
        lengths: list[int] = []
        for worker_id in worker_ids:
            num_matched = 0
            for block_hash in block_hashes:
                expires_s = self._expiry_s.get((worker_id, block_hash))
                if expires_s is None or expires_s <= now_s:
                    break
                num_matched += 1
            lengths.append(num_matched)
        return lengths

    async def record(self, worker_id: str, block_hashes: Sequence[BlockHash]) -> None:
        self.record_now(worker_id, block_hashes)

    async def match_lengths(
        self, block_hashes: Sequence[BlockHash], worker_ids: Sequence[str]
    ) -> list[int]:
        return self.match_now(block_hashes, worker_ids)


class MemoryState:
    """SharedState for a router without Redis: each replica sees only its own work."""

    def __init__(self, config: StateConfig | None = None) -> None:
        self.load = MemoryLoadLedger()
        self.members = MemoryWorkerRegistry()
        self.prefixes = MemoryPrefixHistory(config or StateConfig())

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass
