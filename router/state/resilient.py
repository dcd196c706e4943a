"""Shared state that degrades to memory when Redis goes away, and returns to it.

Writes always land in memory first (this router's own share, announcements and
history), then go to Redis through the guard; reads come from Redis, or from
memory while it is out. When Redis comes back, the heartbeat republishes this
router's whole load share and membership at once, so nothing written during the
outage is lost for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from redis.asyncio import Redis

from triskel.common.hashing import BlockHash
from triskel.router.state.config import StateConfig
from triskel.router.state.guard import RedisGuard
from triskel.router.state.memory import MemoryPrefixHistory
from triskel.router.state.protocols import LoadCounts
from triskel.router.state.redis_load import RedisLoadLedger
from triskel.router.state.redis_members import RedisWorkerRegistry
from triskel.router.state.redis_prefix import RedisPrefixHistory

_log = logging.getLogger(__name__)


def _nothing() -> None:
    return None


class ResilientLoadLedger:
    """LoadLedger: all routers' shares from Redis, or only this router's while it is out."""

    def __init__(self, redis_ledger: RedisLoadLedger, guard: RedisGuard) -> None:
        self._redis = redis_ledger
        self._guard = guard

    async def add(self, worker_id: str, delta: LoadCounts) -> None:
        self._redis.own_share.apply(worker_id, delta)
        await self._guard.run("load.add", lambda: self._redis.publish(worker_id), _nothing)

    async def totals(self, worker_ids: Sequence[str]) -> dict[str, LoadCounts]:
        own_share = self._redis.own_share
        return await self._guard.run(
            "load.totals",
            lambda: self._redis.totals(worker_ids),
            lambda: own_share.snapshot(worker_ids),
        )

    async def heartbeat(self) -> None:
        await self._guard.run("load.heartbeat", self._redis.heartbeat, _nothing)


class ResilientWorkerRegistry:
    """WorkerRegistry: every router's announcements, or only this router's while Redis is out."""

    def __init__(self, redis_registry: RedisWorkerRegistry, guard: RedisGuard) -> None:
        self._redis = redis_registry
        self._guard = guard

    async def register(self, model: str, worker_id: str) -> None:
        self._redis.own.add(model, worker_id)
        await self._guard.run(
            "members.register", lambda: self._redis.publish(model, worker_id), _nothing
        )

    async def deregister(self, model: str, worker_id: str) -> None:
        self._redis.own.remove(model, worker_id)
        await self._guard.run(
            "members.deregister", lambda: self._redis.withdraw(model, worker_id), _nothing
        )

    async def members(self, model: str) -> list[str]:
        own = self._redis.own
        return await self._guard.run(
            "members.members", lambda: self._redis.members(model), lambda: own.snapshot(model)
        )

    async def heartbeat(self) -> None:
        await self._guard.run("members.heartbeat", self._redis.heartbeat, _nothing)


class ResilientPrefixHistory:
    """PrefixHistory: every router's records, or only this router's while Redis is out."""

    def __init__(
        self, redis_history: RedisPrefixHistory, memory: MemoryPrefixHistory, guard: RedisGuard
    ) -> None:
        self._redis = redis_history
        self._memory = memory
        self._guard = guard

    async def record(self, worker_id: str, block_hashes: Sequence[BlockHash]) -> None:
        self._memory.record_now(worker_id, block_hashes)
        await self._guard.run(
            "prefixes.record", lambda: self._redis.record(worker_id, block_hashes), _nothing
        )

    async def match_lengths(
        self, block_hashes: Sequence[BlockHash], worker_ids: Sequence[str]
    ) -> list[int]:
        return await self._guard.run(
            "prefixes.match_lengths",
            lambda: self._redis.match_lengths(block_hashes, worker_ids),
            lambda: self._memory.match_now(block_hashes, worker_ids),
        )


class ResilientState:
    """SharedState over Redis with an in-memory fallback and a background heartbeat.

    `on_redis_error(operation)` is called for every failed Redis call. The heartbeat
    runs every `heartbeat_interval_s`, and at once when Redis comes back.
    """

    def __init__(
        self,
        redis: Redis,
        router_id: str,
        config: StateConfig,
        on_redis_error: Callable[[str], None],
    ) -> None:
        self._redis = redis
        self._interval_s = config.heartbeat_interval_s
        self._wake_heartbeat = asyncio.Event()
        self.guard = RedisGuard(config, on_redis_error, self._wake_heartbeat.set)
        self.load = ResilientLoadLedger(RedisLoadLedger(redis, router_id, config), self.guard)
        self.members = ResilientWorkerRegistry(RedisWorkerRegistry(redis, config), self.guard)
        self.prefixes = ResilientPrefixHistory(
            RedisPrefixHistory(redis, config), MemoryPrefixHistory(config), self.guard
        )
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._is_closing = False

    async def start(self) -> None:
        if self._heartbeat_task is None:
            self._heartbeat_task = asyncio.create_task(
                self._heartbeat_forever(), name="triskel-state-heartbeat"
            )

    async def heartbeat(self) -> None:
        """Renews this router's load share and announcements (the loop calls this)."""
        await self.load.heartbeat()
        await self.members.heartbeat()

    async def aclose(self) -> None:
        """Stops the heartbeat and closes the Redis client this state owns."""
        self._is_closing = True  # ends the loop even if a cancellation gets lost
        self._wake_heartbeat.set()
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._redis.aclose()

    async def _heartbeat_forever(self) -> None:
        while not self._is_closing:
            self._wake_heartbeat.clear()
            try:
                await self.heartbeat()
            except Exception:
                # The guard absorbs Redis failures; anything else is a bug, but a dead
                # heartbeat would let this router's share expire everywhere: log, go on.
                _log.exception("shared-state heartbeat failed")
            # Sleeps one interval, or less when the guard reports that Redis is back.
            # (asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that races with the event, and the loop would never end.)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._wake_heartbeat.wait()
