"""`CacheStore` in Redis, shared by every router replica.

    {prefix}:entry:<id>           STRING  the entry's bytes, EXPIRE ttl
    {prefix}:exact:<exact_hash>   STRING  the entry id, same EXPIRE
    {prefix}:lru:<category>       ZSET    entry id -> last use (wall-clock seconds)
    {prefix}:expiry:<category>    ZSET    entry id -> expiry, to prune the LRU order
    {prefix}:added                STREAM  {id}: one record per put, trimmed ~feed_maxlen

Redis expires bodies and exact keys itself. The quota script first forgets the
category's expired ids (so they do not count), then pops the least recently used
ones over the quota and deletes their bodies: one round trip, atomic, so two
replicas storing at once never evict twice for one excess. An exact key left behind
by an evicted entry points at a missing body, which reads as absent. The script
builds key names itself, which standalone Redis allows (Redis Cluster would not).

The client must return bytes (`decode_responses=False`): bodies are binary-safe JSON.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from triskel.router.semantic_cache.entries import CacheEntry, EntryFormatError
from triskel.router.semantic_cache.store import FeedBatch

_log = logging.getLogger(__name__)

# KEYS[1]: lru zset, KEYS[2]: expiry zset; ARGV[1]: entry key prefix, ARGV[2]: quota,
# ARGV[3]: now (s), ARGV[4]: most ids to forget or evict in one call (bounds the
# script's time when a quota shrinks a lot; the next put goes on).
_EVICT_LUA = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, ARGV[4])
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('ZREM', KEYS[2], unpack(expired))
end
local evicted = {}
local excess = math.min(redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2]), tonumber(ARGV[4]))
if excess > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[1], excess)
  for i = 1, #popped, 2 do
    evicted[#evicted + 1] = popped[i]
    redis.call('ZREM', KEYS[2], popped[i])
    redis.call('DEL', ARGV[1] .. popped[i])
  end
end
return evicted
"""
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


@dataclass(frozen=True, slots=True)
class RedisCacheConfig:
    key_prefix: str = "triskel:cache"
    # Feed records kept (approximately): a replica that falls further behind misses the
    # oldest additions until it reloads (the facade reloads after any store outage).
    feed_maxlen: int = 100_000
    # Keys per SCAN / MGET when loading every entry.
    scan_batch: int = 1000
    max_evictions_per_call: int = 1000

    def __post_init__(self) -> None:
        if not self.key_prefix:
            raise ValueError("RedisCacheConfig.key_prefix must not be empty")
        for name in ("feed_maxlen", "scan_batch", "max_evictions_per_call"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"RedisCacheConfig.{name} must be >= 1, got {value}")


class RedisCacheStore:
    def __init__(self, redis: Redis, config: RedisCacheConfig | None = None) -> None:
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisCacheStore needs a client with decode_responses=False")
        self._redis = redis
        self._config = config or RedisCacheConfig()
        prefix = self._config.key_prefix
        self._entry_prefix = f"{prefix}:entry:"
        self._exact_prefix = f"{prefix}:exact:"
        self._lru_prefix = f"{prefix}:lru:"
        self._expiry_prefix = f"{prefix}:expiry:"
        self._feed_key = f"{prefix}:added"
        self._evict = redis.register_script(_EVICT_LUA)

    async def get(self, entry_id: int) -> CacheEntry | None:
        return self._decode(_as_bytes(await self._redis.get(self._entry_prefix + str(entry_id))))

    async def put(self, entry: CacheEntry, ttl_s: int) -> None:
        member = str(entry.entry_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._entry_prefix + member, entry.to_bytes(), ex=ttl_s)
            pipe.set(self._exact_prefix + entry.exact_hash, member, ex=ttl_s)
            pipe.zadd(self._lru_prefix + entry.category, {member: entry.stored_at_s})
            pipe.zadd(self._expiry_prefix + entry.category, {member: entry.expires_at_s})
            pipe.xadd(
                self._feed_key, {"id": member}, maxlen=self._config.feed_maxlen, approximate=True
            )
            await pipe.execute()

    async def touch(self, entry_id: int, category: str, now_s: float) -> None:
        await self._redis.zadd(self._lru_prefix + category, {str(entry_id): now_s}, xx=True)

    async def delete(self, entry_id: int) -> None:
        entry = await self.get(entry_id)
        if entry is None:
            await self._redis.delete(self._entry_prefix + str(entry_id))
            return
        member = str(entry_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._entry_prefix + member, self._exact_prefix + entry.exact_hash)
            pipe.zrem(self._lru_prefix + entry.category, member)
            pipe.zrem(self._expiry_prefix + entry.category, member)
            await pipe.execute()

    async def exact(self, exact_hash: str) -> int | None:
        raw = await self._redis.get(self._exact_prefix + exact_hash)
        return None if raw is None else int(raw)

    async def evict_over_quota(self, category: str, max_entries: int, now_s: float) -> list[int]:
        evicted: list[bytes] = await self._evict(
            keys=[self._lru_prefix + category, self._expiry_prefix + category],
            args=[self._entry_prefix, max_entries, now_s, self._config.max_evictions_per_call],
        )
        return [int(member) for member in evicted]

    async def all_entries(self) -> AsyncIterator[CacheEntry]:
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self._entry_prefix) + "*"
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(match=pattern, count=self._config.scan_batch):
            batch.append(key)
            if len(batch) >= self._config.scan_batch:
                for entry in await self._bodies(batch):
                    yield entry
                batch = []
        for entry in await self._bodies(batch):
            yield entry

    async def feed_cursor(self) -> str:
        last = await self._redis.xrevrange(self._feed_key, count=1)
        return _text(last[0][0]) if last else "0-0"

    async def added_since(self, cursor: str, limit: int) -> FeedBatch:
        reply = await self._redis.xread({self._feed_key: cursor}, count=limit)
        records = _stream_records(reply)
        if not records:
            return FeedBatch([], cursor)
        keys = [self._entry_prefix + _text(fields[b"id"]) for _, fields in records]
        return FeedBatch(await self._bodies(keys), _text(records[-1][0]))

    async def _bodies(self, keys: Sequence[bytes | str]) -> list[CacheEntry]:
        if not keys:
            return []
        bodies = await self._redis.mget(keys)
        entries = (self._decode(_as_bytes(body)) for body in bodies)
        return [entry for entry in entries if entry is not None]

    def _decode(self, body: bytes | None) -> CacheEntry | None:
        if body is None:
            return None
        try:
            return CacheEntry.from_bytes(body)
        except EntryFormatError as error:
            # Another Triskel version's entry, or damage: absent for this router.
            _log.warning("skipping a cache entry this router cannot read: %s", error)
            return None


def _as_bytes(raw: object) -> bytes | None:
    if raw is None or isinstance(raw, bytes):
        return raw
    raise TypeError(f"RedisCacheStore: expected bytes from Redis, got {type(raw).__name__}")


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _stream_records(reply: object) -> list[tuple[object, Mapping[bytes, object]]]:
    """The one stream's records from an XREAD reply: a list (RESP2) or a dict (RESP3)."""
    if not reply:
        return []
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [record for _, records in cast(Iterable[Any], pairs) for record in records]
