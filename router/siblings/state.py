"""Shared state for sibling processes without Redis: load sums every sibling's share.

Membership and prefix history stay each process's own: siblings discover the same
workers, and prefix history travels as picks (`SharedPick`), learned by each
process's scheduler. With Redis, siblings use Redis' state like separate replicas
and share picks only.
"""

from __future__ import annotations

from collections.abc import Sequence

from triskel.router.siblings import frames
from triskel.router.siblings.bus import SiblingBus
from triskel.router.siblings.frames import LoadShare
from triskel.router.state.config import StateConfig
from triskel.router.state.memory import MemoryLoadLedger, MemoryPrefixHistory, MemoryWorkerRegistry
from triskel.router.state.protocols import LoadCounts


class SiblingLoadLedger:
    """LoadLedger: this process's share, exact, plus each sibling's as last told."""

    def __init__(self, bus: SiblingBus) -> None:
        self._own = MemoryLoadLedger()
        self._bus = bus
        self._siblings: dict[int, dict[str, LoadCounts]] = {}
        bus.on_load(self._told)
        bus.on_gone(self._gone)
        bus.on_connected(self._send_all_to)

    def apply(self, worker_id: str, delta: LoadCounts) -> None:
        self._own.apply(worker_id, delta)
        self._bus.send(frames.load_share(LoadShare(worker_id, self._own.get(worker_id))))

    async def add(self, worker_id: str, delta: LoadCounts) -> None:
        self.apply(worker_id, delta)

    async def totals(self, worker_ids: Sequence[str]) -> dict[str, LoadCounts]:
        totals = self._own.snapshot(worker_ids)
        for shares in self._siblings.values():
            for worker_id in worker_ids:
                counts = shares.get(worker_id)
                if counts is not None:
                    totals[worker_id] = totals[worker_id] + counts
        return totals

    async def heartbeat(self) -> None:
        pass  # a sibling's share ends with its connection, not with a TTL

    def _told(self, sibling: int, share: LoadShare) -> None:
        shares = self._siblings.setdefault(sibling, {})
        if share.counts.is_zero:
            shares.pop(share.worker_id, None)
        else:
            shares[share.worker_id] = share.counts

    def _gone(self, sibling: int) -> None:
        self._siblings.pop(sibling, None)

    def _send_all_to(self, sibling: int) -> None:
        for worker_id, counts in self._own.nonzero().items():
            self._bus.send_to(sibling, frames.load_share(LoadShare(worker_id, counts)))


class SiblingState:
    """SharedState for `--processes N` without Redis."""

    def __init__(self, bus: SiblingBus, config: StateConfig | None = None) -> None:
        self.load = SiblingLoadLedger(bus)
        self.members = MemoryWorkerRegistry()
        self.prefixes = MemoryPrefixHistory(config or StateConfig())

    async def start(self) -> None:
        pass  # the bus is started by its owner (run_router)

    async def aclose(self) -> None:
        pass
