"""`CacheStore` in this process's memory: one router alone, or tests.

Lifetimes are checked on every read, and expired entries are swept in expiry order
(a heap, so a sweep costs only what it removes) on every write. Each category keeps
its LRU order in an OrderedDict (most recently used last). The feed is a bounded log;
a reader that falls more than `feed_maxlen` additions behind misses the oldest.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable

from triskel.router.semantic_cache.entries import CacheEntry
from triskel.router.semantic_cache.store import FeedBatch

DEFAULT_FEED_MAXLEN = 100_000


class MemoryCacheStore:
    def __init__(
        self, clock: Callable[[], float] = time.time, feed_maxlen: int = DEFAULT_FEED_MAXLEN
    ) -> None:
        if feed_maxlen < 1:
            raise ValueError(f"MemoryCacheStore: feed_maxlen must be >= 1, got {feed_maxlen}")
        self._clock = clock
        self._entries: dict[int, CacheEntry] = {}
        self._expires_at_s: dict[int, float] = {}
        self._expiry_heap: list[tuple[float, int]] = []
        self._exact: dict[str, int] = {}
        self._lru: dict[str, OrderedDict[int, None]] = {}
        self._feed: deque[tuple[int, int]] = deque(maxlen=feed_maxlen)  # (sequence, id)
        self._num_added = 0

    @property
    def size(self) -> int:
        return len(self._entries)

    async def get(self, entry_id: int) -> CacheEntry | None:
        return self._live(entry_id)

    async def put(self, entry: CacheEntry, ttl_s: int) -> None:
        self.sweep()
        expires_at_s = self._clock() + ttl_s
        entry_id = entry.entry_id
        self._entries[entry_id] = entry
        self._expires_at_s[entry_id] = expires_at_s
        heapq.heappush(self._expiry_heap, (expires_at_s, entry_id))
        self._exact[entry.exact_hash] = entry_id
        lru = self._lru.setdefault(entry.category, OrderedDict())
        lru[entry_id] = None
        lru.move_to_end(entry_id)
        self._num_added += 1
        self._feed.append((self._num_added, entry_id))

    async def touch(self, entry_id: int, category: str, now_s: float) -> None:
        lru = self._lru.get(category)
        if lru is not None and entry_id in lru:
            lru.move_to_end(entry_id)

    async def delete(self, entry_id: int) -> None:
        self._remove(entry_id)

    async def exact(self, exact_hash: str) -> int | None:
        return self._exact.get(exact_hash)

    async def evict_over_quota(self, category: str, max_entries: int, now_s: float) -> list[int]:
        self.sweep()
        lru = self._lru.get(category)
        evicted: list[int] = []
        while lru and len(lru) > max_entries:
            entry_id = next(iter(lru))
            self._remove(entry_id)
            evicted.append(entry_id)
        return evicted

    async def all_entries(self) -> AsyncIterator[CacheEntry]:
        for entry_id in list(self._entries):
            entry = self._live(entry_id)
            if entry is not None:
                yield entry

    async def feed_cursor(self) -> str:
        return str(self._num_added)

    async def added_since(self, cursor: str, limit: int) -> FeedBatch:
        after = int(cursor)
        # Sequences are consecutive: the first record after `after` sits at a known offset.
        first_index = max(0, len(self._feed) - (self._num_added - after))
        records = list(itertools.islice(self._feed, first_index, first_index + limit))
        if not records:
            return FeedBatch([], cursor)
        entries = [self._live(entry_id) for _, entry_id in records]
        return FeedBatch([e for e in entries if e is not None], str(records[-1][0]))

    def sweep(self) -> list[int]:
        """Removes every expired entry; returns their ids."""
        now_s = self._clock()
        removed: list[int] = []
        while self._expiry_heap and self._expiry_heap[0][0] <= now_s:
            expires_at_s, entry_id = heapq.heappop(self._expiry_heap)
            # A replaced entry left its old expiry in the heap: only the current one counts.
            if self._expires_at_s.get(entry_id) == expires_at_s:
                self._remove(entry_id)
                removed.append(entry_id)
        return removed

    def _live(self, entry_id: int) -> CacheEntry | None:
        entry = self._entries.get(entry_id)
        if entry is not None and self._expires_at_s[entry_id] <= self._clock():
            self._remove(entry_id)
            return None
        return entry

    def _remove(self, entry_id: int) -> None:
        entry = self._entries.pop(entry_id, None)
        if entry is None:
            return
        del self._expires_at_s[entry_id]
        if self._exact.get(entry.exact_hash) == entry_id:
            del self._exact[entry.exact_hash]
        lru = self._lru.get(entry.category)
        if lru is not None:
            lru.pop(entry_id, None)
            if not lru:
                del self._lru[entry.category]
