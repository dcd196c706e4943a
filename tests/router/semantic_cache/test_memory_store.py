"""The in-memory store: lifetimes, exact map, LRU quotas per category, the feed."""

from __future__ import annotations

import numpy as np
import pytest

from triskel.router.semantic_cache.entries import CachedAnswer, CacheEntry
from triskel.router.semantic_cache.keys import Partition
from triskel.router.semantic_cache.memory_store import MemoryCacheStore

START_S = 1_700_000_000.0


class FakeClock:
    """Wall-clock seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now_s = START_S

    def __call__(self) -> float:
        return self.now_s


def entry(entry_id: int, category: str = "code") -> CacheEntry:
    return CacheEntry(
        entry_id=entry_id,
        partition=Partition(category, "acme", "llama", "p0"),
        context_hash="c0",
        exact_hash=f"exact-{entry_id}",
        vector_bytes=np.ones(4, dtype=np.float32).tobytes(),
        guard=None,
        answer=CachedAnswer((f"answer {entry_id}",), "stop", 5, 2),
        stored_at_s=START_S,
        expires_at_s=START_S + 60,
    )


@pytest.mark.asyncio
async def test_put_get_exact_and_delete() -> None:
    store = MemoryCacheStore(FakeClock())
    await store.put(entry(1), ttl_s=60)
    assert await store.get(1) == entry(1)
    assert await store.exact("exact-1") == 1
    await store.delete(1)
    assert await store.get(1) is None
    assert await store.exact("exact-1") is None
    await store.delete(1)  # gone already: nothing happens


@pytest.mark.asyncio
async def test_entries_expire_on_read_and_by_the_sweep() -> None:
    clock = FakeClock()
    store = MemoryCacheStore(clock)
    await store.put(entry(1), ttl_s=10)
    await store.put(entry(2), ttl_s=20)
    clock.now_s += 9.9
    assert await store.get(1) is not None
    clock.now_s += 0.1  # 10 s after the put: entry 1's lifetime is over
    assert await store.get(1) is None
    assert await store.exact("exact-1") is None
    clock.now_s += 10  # entry 2 too, never read: the sweep finds it
    assert store.sweep() == [2]
    assert store.size == 0


@pytest.mark.asyncio
async def test_storing_again_renews_the_lifetime() -> None:
    clock = FakeClock()
    store = MemoryCacheStore(clock)
    await store.put(entry(1), ttl_s=10)
    clock.now_s += 8
    await store.put(entry(1), ttl_s=10)  # lives until +18 now
    clock.now_s += 5
    assert store.sweep() == []  # the first lifetime's end does not remove it
    assert await store.get(1) is not None


@pytest.mark.asyncio
async def test_quota_evicts_the_least_recently_used_of_the_category_only() -> None:
    store = MemoryCacheStore(FakeClock())
    for entry_id in (1, 2, 3):
        await store.put(entry(entry_id, "code"), ttl_s=60)
    await store.put(entry(10, "chat"), ttl_s=60)
    await store.touch(1, "code", START_S + 1)  # 1 used again: 2 is now the oldest
    assert await store.evict_over_quota("code", max_entries=2, now_s=START_S) == [2]
    assert await store.get(2) is None
    assert await store.evict_over_quota("code", max_entries=1, now_s=START_S) == [3]
    assert await store.get(1) is not None
    assert await store.get(10) is not None  # the other category is untouched
    assert await store.evict_over_quota("chat", max_entries=1, now_s=START_S) == []


@pytest.mark.asyncio
async def test_expired_entries_do_not_count_against_the_quota() -> None:
    clock = FakeClock()
    store = MemoryCacheStore(clock)
    await store.put(entry(1), ttl_s=5)
    await store.put(entry(2), ttl_s=60)
    clock.now_s += 5
    assert await store.evict_over_quota("code", max_entries=1, now_s=clock.now_s) == []
    assert await store.get(2) is not None


@pytest.mark.asyncio
async def test_all_entries_lists_live_ones() -> None:
    clock = FakeClock()
    store = MemoryCacheStore(clock)
    await store.put(entry(1), ttl_s=5)
    await store.put(entry(2), ttl_s=60)
    clock.now_s += 5
    assert [e.entry_id async for e in store.all_entries()] == [2]


@pytest.mark.asyncio
async def test_the_feed_returns_additions_after_a_cursor_in_batches() -> None:
    store = MemoryCacheStore(FakeClock())
    await store.put(entry(1), ttl_s=60)
    cursor = await store.feed_cursor()
    for entry_id in (2, 3, 4):
        await store.put(entry(entry_id), ttl_s=60)
    await store.delete(3)  # gone before it was read: skipped, but the cursor moves past it
    first = await store.added_since(cursor, limit=2)
    assert [e.entry_id for e in first.entries] == [2]
    second = await store.added_since(first.cursor, limit=2)
    assert [e.entry_id for e in second.entries] == [4]
    third = await store.added_since(second.cursor, limit=2)
    assert third.entries == [] and third.cursor == second.cursor
