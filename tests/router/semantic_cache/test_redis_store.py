"""The Redis store against a real redis-server: layout, lifetimes, quotas, the feed."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from redis.asyncio import Redis

from triskel.router.semantic_cache.entries import CachedAnswer, CacheEntry
from triskel.router.semantic_cache.guards import Guard
from triskel.router.semantic_cache.keys import Partition
from triskel.router.semantic_cache.redis_store import RedisCacheConfig, RedisCacheStore

from support.redis_server import eventually


def entry(entry_id: int, category: str = "code", ttl_s: float = 60) -> CacheEntry:
    now_s = time.time()
    return CacheEntry(
        entry_id=entry_id,
        partition=Partition(category, "acme", "llama", "p0"),
        context_hash="c0",
        exact_hash=f"exact-{entry_id}",
        vector_bytes=np.ones(4, dtype=np.float32).tobytes(),
        guard=Guard(("1",), (), (), "en", (), frozenset({"one"})),
        answer=CachedAnswer((f"answer {entry_id}",), "stop", 5, 2),
        stored_at_s=now_s,
        expires_at_s=now_s + ttl_s,
    )


@pytest.fixture
def store(bytes_redis: Redis, redis_cache_config: RedisCacheConfig) -> RedisCacheStore:
    return RedisCacheStore(bytes_redis, redis_cache_config)


@pytest.mark.asyncio
async def test_put_get_exact_and_delete(
    store: RedisCacheStore, bytes_redis: Redis, redis_cache_config: RedisCacheConfig
) -> None:
    first = entry(1)
    await store.put(first, ttl_s=60)
    assert await store.get(1) == first
    assert await store.exact("exact-1") == 1
    # The documented layout: one key per body, with a lifetime.
    prefix = redis_cache_config.key_prefix
    assert 0 < await bytes_redis.ttl(f"{prefix}:entry:1") <= 60
    assert 0 < await bytes_redis.ttl(f"{prefix}:exact:exact-1") <= 60
    await store.delete(1)
    assert await store.get(1) is None and await store.exact("exact-1") is None
    assert await bytes_redis.zcard(f"{prefix}:lru:code") == 0
    await store.delete(1)  # gone already: nothing happens


@pytest.mark.asyncio
async def test_bodies_expire_in_redis(store: RedisCacheStore) -> None:
    await store.put(entry(1, ttl_s=1), ttl_s=1)
    assert await store.get(1) is not None

    async def expired() -> bool:
        return await store.get(1) is None and await store.exact("exact-1") is None

    await eventually(expired, timeout_s=5.0)


@pytest.mark.asyncio
async def test_quota_evicts_the_least_recently_used_of_the_category_only(
    store: RedisCacheStore,
) -> None:
    now_s = time.time()
    for entry_id in (1, 2, 3):
        await store.put(entry(entry_id, "code"), ttl_s=60)
    await store.put(entry(10, "chat"), ttl_s=60)
    await store.touch(1, "code", now_s + 10)  # 1 used again: 2 is now the oldest
    assert await store.evict_over_quota("code", max_entries=2, now_s=now_s) == [2]
    assert await store.get(2) is None
    assert await store.evict_over_quota("code", max_entries=1, now_s=now_s) == [3]
    assert await store.get(1) is not None
    assert await store.get(10) is not None  # the other category is untouched
    assert await store.evict_over_quota("chat", max_entries=1, now_s=now_s) == []


@pytest.mark.asyncio
async def test_touching_a_gone_entry_does_not_bring_it_back(
    store: RedisCacheStore, bytes_redis: Redis, redis_cache_config: RedisCacheConfig
) -> None:
    await store.touch(42, "code", time.time())
    assert await bytes_redis.zcard(f"{redis_cache_config.key_prefix}:lru:code") == 0


@pytest.mark.asyncio
async def test_expired_entries_leave_the_lru_order_and_do_not_count(
    store: RedisCacheStore,
) -> None:
    await store.put(entry(1, ttl_s=5), ttl_s=5)
    await store.put(entry(2), ttl_s=60)
    # Evicting at a time past entry 1's expiry: it is forgotten, not counted or evicted.
    later_s = time.time() + 6
    assert await store.evict_over_quota("code", max_entries=1, now_s=later_s) == []
    assert await store.get(2) is not None


@pytest.mark.asyncio
async def test_all_entries_scans_every_live_entry(
    store: RedisCacheStore, bytes_redis: Redis, redis_cache_config: RedisCacheConfig
) -> None:
    # Batches of 2 keys: the scan's last, partial batch is read too.
    small_batches = RedisCacheStore(
        bytes_redis, dataclasses.replace(redis_cache_config, scan_batch=2)
    )
    for entry_id in range(1, 6):
        await store.put(entry(entry_id), ttl_s=60)
    assert sorted([e.entry_id async for e in small_batches.all_entries()]) == [1, 2, 3, 4, 5]


@pytest.mark.asyncio
async def test_the_feed_returns_additions_after_a_cursor(
    bytes_redis: Redis, redis_cache_config: RedisCacheConfig
) -> None:
    writer = RedisCacheStore(bytes_redis, redis_cache_config)
    reader = RedisCacheStore(bytes_redis, redis_cache_config)
    assert await reader.feed_cursor() == "0-0"  # no feed yet
    await writer.put(entry(1), ttl_s=60)
    cursor = await reader.feed_cursor()
    for entry_id in (2, 3, 4):
        await writer.put(entry(entry_id), ttl_s=60)
    await writer.delete(3)  # gone before it was read: skipped, the cursor moves past it
    first = await reader.added_since(cursor, limit=2)
    assert [e.entry_id for e in first.entries] == [2]
    second = await reader.added_since(first.cursor, limit=2)
    assert [e.entry_id for e in second.entries] == [4]
    third = await reader.added_since(second.cursor, limit=2)
    assert third.entries == [] and third.cursor == second.cursor


@pytest.mark.asyncio
async def test_an_unreadable_body_reads_as_absent(
    store: RedisCacheStore, bytes_redis: Redis, redis_cache_config: RedisCacheConfig
) -> None:
    await bytes_redis.set(f"{redis_cache_config.key_prefix}:entry:7", b'{"v": 999}')
    assert await store.get(7) is None
    assert [e async for e in store.all_entries()] == []


def test_a_client_decoding_replies_is_refused(redis_url: str) -> None:
    text_client = Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses=False"):
        RedisCacheStore(text_client)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match=r"feed_maxlen must be >= 1, got 0"):
        RedisCacheConfig(feed_maxlen=0)
