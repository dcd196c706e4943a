"""Opens the router's semantic cache: entries in Redis when the router has a Redis URL
(replicas share them), in this process's memory otherwise."""

from __future__ import annotations

from redis.asyncio import Redis

from triskel.router.semantic_cache.cache import SemanticCache
from triskel.router.semantic_cache.config import SemanticCacheConfig
from triskel.router.semantic_cache.memory_store import MemoryCacheStore
from triskel.router.semantic_cache.redis_store import RedisCacheStore
from triskel.router.state.config import StateConfig
from triskel.router.state.factory import connect_redis


class OpenedCache:
    """The cache and the Redis client it owns (None in memory)."""

    def __init__(self, cache: SemanticCache, redis: Redis | None) -> None:
        self.cache, self._redis = cache, redis

    async def start(self) -> None:
        await self.cache.start()

    async def aclose(self) -> None:
        await self.cache.aclose()
        if self._redis is not None:
            await self._redis.aclose()


def open_semantic_cache(
    redis_url: str | None, ndim: int, password: str | None = None
) -> OpenedCache:
    """ValueError for a malformed URL; an unreachable Redis only means bypasses.
    `password`: Redis' requirepass (the router's --redis-password-file)."""
    config = SemanticCacheConfig(ndim=ndim)
    if redis_url is None:
        return OpenedCache(SemanticCache(MemoryCacheStore(), config), None)
    redis = connect_redis(
        redis_url,
        StateConfig(),
        timeout_s=config.call_timeout_s,
        decode_responses=False,
        password=password,
    )
    return OpenedCache(SemanticCache(RedisCacheStore(redis), config), redis)
