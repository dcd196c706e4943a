"""One worker's KV events as the router reaches them, and the direct way to follow them.

Following directly means this router opens its own `StreamKvEvents` subscription
and applies every batch to its index: the only way without Redis, and the KV
relay's fallback while Redis is out. Each subscription starts with a snapshot, so
resubscribing after a gap or a broken stream heals the index by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from triskel.router.scheduling.producers.kv_events_feed import apply_batch
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.worker_client import WorkerCallError, WorkerClosed
from triskel.v1 import worker_pb2

_log = logging.getLogger(__name__)

# After a broken stream or a gap: long enough not to spin on a dead worker.
RECONNECT_DELAY_S = 0.5


class KvEventCall(Protocol):
    """A `StreamKvEvents` subscription: a snapshot batch, then live batches; `cancel`
    ends it.

    Iterating raises WorkerCallError when the stream breaks, WorkerClosed when the
    router closed the worker's client (it left).
    """

    def __aiter__(self) -> AsyncIterator[worker_pb2.KvEventBatch]: ...

    def cancel(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class KvEventSource:
    """How to reach one worker's KV events.

    `subscribe()` opens a new subscription on the worker; `on_lost(error)` is told
    when one breaks (the cluster view then leaves the worker out of scheduling).
    """

    worker_id: str
    subscribe: Callable[[], KvEventCall]
    on_lost: Callable[[WorkerCallError], None]


async def follow_directly(source: KvEventSource, index: KvBlockIndex) -> None:
    """Keeps `index` current from `source`'s own subscriptions; runs until cancelled.

    A broken stream forgets the worker's blocks (they may be gone with it) and
    reports the loss; a gap ends the subscription so the next one brings a snapshot.
    """

    async def apply(batch: worker_pb2.KvEventBatch) -> bool:
        return apply_batch(index, batch)

    while True:
        try:
            if not await consume_subscription(source, apply):
                _log.warning("KV events from %s had a gap; resubscribing", source.worker_id)
        except WorkerClosed:
            # Its client was closed: the worker left, and its blocks with it.
            index.remove_worker(source.worker_id)
            return
        except WorkerCallError as error:
            source.on_lost(error)
            index.remove_worker(source.worker_id)
        await asyncio.sleep(RECONNECT_DELAY_S)


async def consume_subscription(
    source: KvEventSource, deliver: Callable[[worker_pb2.KvEventBatch], Awaitable[bool]]
) -> bool:
    """Opens one subscription and passes each batch to `deliver` until it returns False.

    Returns False when `deliver` refused a batch, True when the worker ended the
    stream (it cuts subscribers that fall far behind). The call is cancelled on the
    way out however this ends, so the worker never keeps a subscription nobody reads.
    """
    call = source.subscribe()
    try:
        async for batch in call:
            if not await deliver(batch):
                return False
        return True
    finally:
        call.cancel()
