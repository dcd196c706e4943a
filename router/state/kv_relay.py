"""Shares the precise KV index between router replicas through Redis.

Without a relay every replica subscribes to every worker's KV events. With one,
a single replica per worker (the lease holder) subscribes and appends the batches
to a Redis stream; every replica, the holder included, applies the streams to its
own `KvBlockIndex`, so scheduling keeps reading a local index and never waits on
Redis. A replica that starts late catches up from the stored snapshot.

    worker ──StreamKvEvents──► holder ──XADD──► {prefix}:kv:events:<worker>
                                                   │ XREAD, every replica
                                                   ▼
                                             local KvBlockIndex

While Redis is out a replica follows every worker directly, as without a relay
(each new subscription starts with a snapshot, so the index heals); once Redis
answers again it goes back to the streams, starting from the stored snapshots.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable

from redis.asyncio import Redis

from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.state.config import StateConfig
from triskel.router.state.guard import RedisGuard
from triskel.router.state.kv_direct import KvEventSource, follow_directly
from triskel.router.state.kv_relay_follower import KvStreamFollower
from triskel.router.state.kv_relay_holder import KvEventHolder
from triskel.router.state.kv_relay_store import KvRelayStore

_log = logging.getLogger(__name__)


class KvRelay:
    """One router replica's part in the relay, keeping `index` current.

    `start()` it, `follow(source)` each worker for as long as it is part of the
    deployment (one task per worker, cancelled when it leaves), then `aclose()`
    (`stop()` alone leaves the leases to expire, as a crashed replica would).
    `redis` must return bytes (see `open_kv_relay`), and this relay closes it.
    `on_redis_error(operation)` counts failed Redis calls, as for the shared state.
    """

    def __init__(
        self,
        redis: Redis,
        router_id: str,
        config: StateConfig,
        on_redis_error: Callable[[str], None],
        index: KvBlockIndex,
    ) -> None:
        self._redis = redis
        self._config = config
        self._index = index
        self._store = KvRelayStore(redis, router_id, config)
        # Relay calls include blocking reads, so they get the relay's own bound.
        guard_config = dataclasses.replace(config, call_timeout_s=config.kv_call_timeout_s)
        self.guard = RedisGuard(guard_config, on_redis_error)
        # The workers followed now; the holder and the follower read it live.
        self._sources: dict[str, KvEventSource] = {}
        self._ever_followed: set[str] = set()
        self.holder = KvEventHolder(self._store, self.guard, config)
        self._follower = KvStreamFollower(self._store, self.guard, index, config)
        # Exactly one of the two is set: followers wait on the mode they leave.
        self._is_relaying = asyncio.Event()
        self._is_relaying.set()
        self._is_direct = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def is_direct(self) -> bool:
        """True while Redis is out and every worker is followed directly."""
        return self._is_direct.is_set()

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self.holder.run(self._sources), name="triskel-kv-holder"),
                asyncio.create_task(self._follow_streams(), name="triskel-kv-follower"),
            ]

    async def follow(self, source: KvEventSource) -> None:
        """Keeps the index current for `source`'s worker until cancelled."""
        self._sources[source.worker_id] = source
        self._ever_followed.add(source.worker_id)
        try:
            while True:
                await self._is_direct.wait()
                direct = asyncio.create_task(follow_directly(source, self._index))
                try:
                    await self._is_relaying.wait()
                finally:
                    direct.cancel()
                    await asyncio.wait([direct])
        finally:
            # At once, so no entry read later lands in the index for a worker that left.
            if self._sources.get(source.worker_id) is source:
                del self._sources[source.worker_id]

    async def stop(self) -> None:
        """Stops claiming, relaying and reading; held leases expire by themselves."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks.clear()

    async def aclose(self) -> None:
        """Stops, gives up this replica's leases (others take over at once), closes Redis."""
        await self.stop()
        release = functools.partial(self._store.release, sorted(self._ever_followed))
        await self.guard.run("kv_relay.release", release, lambda: None)
        await self._redis.aclose()

    async def _follow_streams(self) -> None:
        while True:
            has_failed = False
            try:
                await self._follower.run(self._sources)  # returns when Redis is out
            except Exception:
                _log.exception("KV relay follower failed")
                has_failed = True
            _log.warning("KV relay: Redis is out; following workers directly until it answers")
            self._is_relaying.clear()
            self._is_direct.set()
            if has_failed:
                # A bug, not an outage: stay direct a while rather than fail in a loop.
                await asyncio.sleep(self._config.backoff_max_s)
            await self._redis_answers()
            self._is_direct.clear()
            self._is_relaying.set()
            _log.info("KV relay: Redis answers again; following workers through it")

    async def _redis_answers(self) -> None:
        """Returns once Redis answers a ping; the guard spaces out the tries while it is out."""
        while True:
            if await self.guard.run("kv_relay.ping", self._store.ping, _no_answer):
                return
            await asyncio.sleep(self._config.backoff_initial_s)


def _no_answer() -> bool:
    return False
