"""The holder side of the KV relay: lease workers and copy their KV events into Redis.

Every replica runs one holder. Every third of the lease TTL it claims all workers
in one script call: it keeps the leases it holds, takes the free ones (a holder
that died lets its leases expire), and learns which held workers a replica wants
a fresh snapshot of. For each held worker it keeps one subscription open and
appends every batch to the worker's stream; a new subscription, and so a snapshot,
replaces it when one is wanted, when an append failed (the lease was lost or Redis
went away) or when the stream broke. A worker no longer followed is given up at
once: its subscription ends and its lease is released for the others.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping

from triskel.router.state.config import StateConfig
from triskel.router.state.guard import RedisGuard
from triskel.router.state.kv_direct import RECONNECT_DELAY_S, KvEventSource, consume_subscription
from triskel.router.state.kv_relay_store import KvRelayStore, LeaseClaim
from triskel.router.worker_client import WorkerCallError, WorkerClosed
from triskel.v1 import worker_pb2

_log = logging.getLogger(__name__)

_NOT_HELD = LeaseClaim(is_held=False)


class KvEventHolder:
    """Holds what leases it can and relays the held workers' KV events into their streams."""

    def __init__(self, store: KvRelayStore, guard: RedisGuard, config: StateConfig) -> None:
        self._store = store
        self._guard = guard
        self._renew_interval_s = config.kv_lease_ttl_s / 3
        self._relays: dict[str, asyncio.Task[None]] = {}

    @property
    def relayed_worker_ids(self) -> list[str]:
        """Workers this replica currently holds a subscription for."""
        return sorted(w for w, task in self._relays.items() if not task.done())

    async def run(self, sources: Mapping[str, KvEventSource]) -> None:
        """Claims and relays until cancelled; stops every subscription on the way out.

        `sources` is read live: workers come and go with the deployment.
        """
        try:
            while True:
                try:
                    await self.renew(sources)
                except Exception:
                    # The guard absorbs Redis failures; anything else is a bug, but a dead
                    # holder would stall every replica's index: log, go on.
                    _log.exception("KV relay lease renewal failed")
                await asyncio.sleep(self._renew_interval_s)
        finally:
            for worker_id in list(self._relays):
                await self._stop(worker_id)

    async def renew(self, sources: Mapping[str, KvEventSource]) -> None:
        """One claim round: renew or take leases, then start or stop subscriptions to match."""
        departed = [worker_id for worker_id in self._relays if worker_id not in sources]
        for worker_id in departed:
            await self._stop(worker_id)
        if departed:
            release = functools.partial(self._store.release, departed)
            await self._guard.run("kv_relay.release", release, _nothing)
        this_round = dict(sources)  # whatever changes while the claim is in flight
        claim = functools.partial(self._store.claim, list(this_round))
        # While Redis is out nothing counts as held: appends could not land anyway.
        claims = await self._guard.run("kv_relay.claim", claim, _no_claims)
        for worker_id, source in this_round.items():
            lease = claims.get(worker_id, _NOT_HELD)
            task = self._relays.get(worker_id)
            # A finished relay (an append failed, or a bug) is replaced by a new one.
            if task is not None and (task.done() or not lease.is_held or lease.is_snapshot_wanted):
                await self._stop(worker_id)
                task = None
            if lease.is_held and task is None:
                self._relays[worker_id] = asyncio.create_task(
                    self._relay(source), name=f"triskel-kv-relay-{worker_id}"
                )

    async def _relay(self, source: KvEventSource) -> None:
        """Subscription after subscription, until an append fails."""
        while True:
            num_appended = 0

            async def append(batch: worker_pb2.KvEventBatch) -> bool:
                nonlocal num_appended
                is_appended = await self._append(source.worker_id, batch)
                num_appended += is_appended
                return is_appended

            try:
                if not await consume_subscription(source, append):
                    return  # not the holder any more, or Redis is out: renew decides
            except WorkerClosed:
                # Its client was closed: the worker left (killed, drained). The next
                # renewal lets it go; there is nothing to retry.
                return
            except WorkerCallError as error:
                source.on_lost(error)
                # Tell the replicas once per broken subscription, not on every retry.
                if num_appended and not await self._append(source.worker_id, None):
                    return
            await asyncio.sleep(RECONNECT_DELAY_S)

    async def _append(self, worker_id: str, batch: worker_pb2.KvEventBatch | None) -> bool:
        append = functools.partial(self._store.append, worker_id, batch)
        return await self._guard.run("kv_relay.append", append, _not_appended)

    async def _stop(self, worker_id: str) -> None:
        task = self._relays.pop(worker_id)
        task.cancel()
        # asyncio.wait, not `await task`: suppressing the task's CancelledError would
        # also swallow a cancellation of this loop arriving meanwhile.
        await asyncio.wait([task])
        if not task.cancelled() and (error := task.exception()) is not None:
            _log.error("KV relay for %s failed", worker_id, exc_info=error)


def _nothing() -> None:
    return None


def _no_claims() -> dict[str, LeaseClaim]:
    return {}


def _not_appended() -> bool:
    return False
