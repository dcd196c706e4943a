"""Fan-out of a worker's KV cache events to any number of subscribers.

A new subscriber first gets a snapshot of every cached block, in each tier (GPU
memory and, with one, the host tier) with its medium (so a router that connects
late, or reconnects after a gap, rebuilds its index), then live batches
in order. A subscriber that falls far behind is cut off rather than letting the
worker's memory grow: it reconnects and gets a fresh snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

from triskel.common.hashing import BlockHash
from triskel.common.kv_tiers import KvMedium
from triskel.workers.api import KvCacheEvent, KvEventBatch
from triskel.workers.engine.events import BlocksStored

_MAX_PENDING_BATCHES = 10_000


class _Closed:
    """Marks the end of a subscription."""


class KvEventHub:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[KvEventBatch | _Closed]] = set()
        self._last_event_id = 0

    def publish(self, events: Sequence[KvCacheEvent]) -> None:
        if not events:
            return
        self._last_event_id = events[-1].event_id
        batch = KvEventBatch(tuple(events), is_snapshot=False)
        for queue in list(self._subscribers):
            if queue.qsize() >= _MAX_PENDING_BATCHES:
                self._subscribers.discard(queue)
                queue.put_nowait(_Closed())
            else:
                queue.put_nowait(batch)

    def subscribe(
        self, cached_chains: Mapping[KvMedium, Sequence[Sequence[BlockHash]]]
    ) -> AsyncIterator[KvEventBatch]:
        """The snapshot (events numbered with the last live id), then live batches.

        `cached_chains` gives each tier's cached blocks as chains; the snapshot
        carries each chain as a Stored event of that tier's medium.

        The subscription starts now, not at the first iteration, so no event published
        between the snapshot and the first read is lost.
        """
        queue: asyncio.Queue[KvEventBatch | _Closed] = asyncio.Queue()
        self._subscribers.add(queue)
        snapshot = tuple(
            BlocksStored(self._last_event_id, tuple(chain), None, medium)
            for medium, chains in cached_chains.items()
            for chain in chains
            if chain
        )
        return self._stream(queue, KvEventBatch(snapshot, is_snapshot=True))

    async def _stream(
        self, queue: asyncio.Queue[KvEventBatch | _Closed], snapshot: KvEventBatch
    ) -> AsyncIterator[KvEventBatch]:
        try:
            yield snapshot
            while True:
                item = await queue.get()
                if isinstance(item, _Closed):
                    return
                yield item
        finally:
            self._subscribers.discard(queue)

    def close(self) -> None:
        for queue in self._subscribers:
            queue.put_nowait(_Closed())
        self._subscribers.clear()
