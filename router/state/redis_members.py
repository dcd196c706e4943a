"""Ring membership across router replicas in Redis.

    {prefix}:members:<model>   ZSET  worker id -> expiry (Redis server time, ms)

Announcements are scored with Redis's own clock (TIME inside a script), so routers
with skewed clocks agree on what has expired. `members` drops expired announcements
and reads the rest in one script call. The key itself expires member_ttl_s after
the last announcement, so a model nobody serves leaves nothing behind.
"""

from __future__ import annotations

from redis.asyncio import Redis

from triskel.router.state.config import StateConfig
from triskel.router.state.memory import MemoryWorkerRegistry

# Server time in ms; shared by both scripts.
_NOW_MS_LUA = """
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""
# KEYS[1]: the model's set; ARGV[1]: TTL in ms; ARGV[2..]: worker ids.
_ANNOUNCE_LUA = (
    _NOW_MS_LUA
    + """
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[1]), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
"""
)
# KEYS[1]: the model's set. Returns the live worker ids.
_LIVE_MEMBERS_LUA = (
    _NOW_MS_LUA
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""
)


class RedisWorkerRegistry:
    """WorkerRegistry over Redis; `redis` must decode responses to str.

    `own` holds the workers this router announced (updated before any network call),
    so `heartbeat` can renew them all and `members` always includes them.
    """

    def __init__(
        self, redis: Redis, config: StateConfig, own: MemoryWorkerRegistry | None = None
    ) -> None:
        self.own = own or MemoryWorkerRegistry()
        self._redis = redis
        self._ttl_ms = round(config.member_ttl_s * 1000)
        self._key_prefix = f"{config.key_prefix}:members:"
        self._announce = redis.register_script(_ANNOUNCE_LUA)
        self._live_members = redis.register_script(_LIVE_MEMBERS_LUA)

    async def register(self, model: str, worker_id: str) -> None:
        self.own.add(model, worker_id)
        await self.publish(model, worker_id)

    async def publish(self, model: str, worker_id: str) -> None:
        """Announces one worker (already in `own`) for the member TTL."""
        await self._announce(keys=[self._key_prefix + model], args=[self._ttl_ms, worker_id])

    async def deregister(self, model: str, worker_id: str) -> None:
        self.own.remove(model, worker_id)
        await self.withdraw(model, worker_id)

    async def withdraw(self, model: str, worker_id: str) -> None:
        """Removes one worker's announcement for every replica."""
        await self._redis.zrem(self._key_prefix + model, worker_id)

    async def members(self, model: str) -> list[str]:
        live: list[str] = await self._live_members(keys=[self._key_prefix + model])
        return sorted(set(live).union(self.own.snapshot(model)))

    async def heartbeat(self) -> None:
        """Renews every announcement this router made, one script call per model."""
        by_model = self.own.by_model()
        if not by_model:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for model, workers in by_model.items():
                await self._announce(
                    keys=[self._key_prefix + model], args=[self._ttl_ms, *workers], client=pipe
                )
            await pipe.execute()
