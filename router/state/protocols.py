"""The three things router replicas share, one small Protocol each.

Every router replica sees the same answers when the backend is Redis; with the
in-memory backend each replica sees only its own work. Callers cannot tell which
backend they hold, nor whether Redis is up (see `resilient.py`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from triskel.common.hashing import BlockHash


@dataclass(frozen=True, slots=True)
class LoadCounts:
    """Work in flight on one worker (the same fields as the scheduler's ActiveLoad).

    As a delta, fields may be negative: the counts of a finished request, negated.
    """

    num_requests: int = 0
    num_prefill_tokens: int = 0
    num_decode_blocks: int = 0

    def __add__(self, other: LoadCounts) -> LoadCounts:
        return LoadCounts(
            self.num_requests + other.num_requests,
            self.num_prefill_tokens + other.num_prefill_tokens,
            self.num_decode_blocks + other.num_decode_blocks,
        )

    def __neg__(self) -> LoadCounts:
        return LoadCounts(-self.num_requests, -self.num_prefill_tokens, -self.num_decode_blocks)

    @property
    def is_zero(self) -> bool:
        return self == _ZERO


_ZERO = LoadCounts()


class LoadLedger(Protocol):
    """Work in flight per worker, summed over every router replica.

    `add` applies a signed delta to this router's share for `worker_id` (the counts
    on dispatch, the same counts negated on finish). `totals` returns one entry per
    requested worker id (zeros for workers nobody reported); this router's own share
    is always exact, other routers' shares are as of their last write. `heartbeat`
    keeps this router's share alive: a share not refreshed within the load TTL is
    dropped, so a crashed router's counts expire instead of sticking forever.
    """

    async def add(self, worker_id: str, delta: LoadCounts) -> None: ...

    async def totals(self, worker_ids: Sequence[str]) -> dict[str, LoadCounts]: ...

    async def heartbeat(self) -> None: ...


@runtime_checkable
class ImmediateLoadLedger(LoadLedger, Protocol):
    """A LoadLedger whose `add` waits for nothing (no Redis round trip): `apply` does the
    same at once, so a request's two writes need no background task each."""

    def apply(self, worker_id: str, delta: LoadCounts) -> None: ...


class WorkerRegistry(Protocol):
    """The live worker ids per model, identical in every router replica.

    `register` announces that this router sees `worker_id` serving `model`; the
    announcement lasts the member TTL and `heartbeat` renews all of this router's.
    `deregister` withdraws it for every replica (one that still sees the worker
    live announces it again on its next heartbeat). `members` is the sorted union of
    live announcements, so every replica builds the same consistent-hash rings.
    """

    async def register(self, model: str, worker_id: str) -> None: ...

    async def deregister(self, model: str, worker_id: str) -> None: ...

    async def members(self, model: str) -> list[str]: ...

    async def heartbeat(self) -> None: ...


class PrefixHistory(Protocol):
    """Which workers were recently sent which prompt blocks (approximate prefix index).

    `record` notes that `worker_id` was sent a prompt whose full-block hashes are
    `block_hashes` (chained, so a hash stands for its whole prefix); records expire
    after the prefix TTL. `match_lengths` returns, per worker id in order, how many
    leading blocks of `block_hashes` that worker holds a live record of.
    """

    async def record(self, worker_id: str, block_hashes: Sequence[BlockHash]) -> None: ...

    async def match_lengths(
        self, block_hashes: Sequence[BlockHash], worker_ids: Sequence[str]
    ) -> list[int]: ...


class SharedState(Protocol):
    """The three concerns together, with the lifecycle of their background heartbeat."""

    @property
    def load(self) -> LoadLedger: ...

    @property
    def members(self) -> WorkerRegistry: ...

    @property
    def prefixes(self) -> PrefixHistory: ...

    async def start(self) -> None:
        """Starts heartbeats (a no-op for purely local state)."""

    async def aclose(self) -> None:
        """Stops heartbeats and releases connections."""


@contextlib.asynccontextmanager
async def load_in_flight(
    ledger: LoadLedger, worker_id: str, counts: LoadCounts
) -> AsyncIterator[None]:
    """Counts `counts` on `worker_id` while the body runs, however it ends.

    Every ledger updates this router's own share before its first await, so even a
    cancellation during the final `add` leaves the share exact.
    """
    await ledger.add(worker_id, counts)
    try:
        yield
    finally:
        await ledger.add(worker_id, -counts)
