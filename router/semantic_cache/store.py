"""Where cache entries live: the `CacheStore` contract, shared by every backend.

The store holds entry bodies, the exact-hash map, per-category LRU order and a feed
of additions; each router replica keeps its own vector index over the entries and
follows the feed to learn what the other replicas stored:

    replica A ──put──► store ──feed (entry ids, in order)──► replica B indexes them
                        ▲
    replica B ──get────┘   (bodies are fetched on a hit only)

Backends raise their I/O errors (redis.RedisError, OSError, TimeoutError) as they
come; the `SemanticCache` facade turns them into bypasses, so they never reach a
request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from triskel.router.semantic_cache.entries import CacheEntry


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """Entries added since a cursor (those still alive), and the cursor after them."""

    entries: list[CacheEntry]
    cursor: str


class CacheStore(Protocol):
    """Entry bodies with lifetimes, an exact map, LRU quotas, and a feed of additions.

    Times are wall-clock seconds (`now_s`), as entries move between routers.
    """

    async def get(self, entry_id: int) -> CacheEntry | None:
        """The entry, or None when absent, expired or unreadable."""
        ...

    async def put(self, entry: CacheEntry, ttl_s: int) -> None:
        """Stores (or replaces) `entry` for `ttl_s` seconds: its body, its exact hash, its
        place at the recent end of its category's LRU order, and one feed record."""
        ...

    async def touch(self, entry_id: int, category: str, now_s: float) -> None:
        """Marks the entry used at `now_s` (LRU order); nothing if it is gone."""
        ...

    async def delete(self, entry_id: int) -> None:
        """Removes the entry and its exact hash; nothing if it is gone."""
        ...

    async def exact(self, exact_hash: str) -> int | None:
        """The id stored under `exact_hash`, if any (its body may be gone since)."""
        ...

    async def evict_over_quota(self, category: str, max_entries: int, now_s: float) -> list[int]:
        """Forgets the category's expired entries, then removes its least recently used
        ones until at most `max_entries` remain; returns the removed ids."""
        ...

    def all_entries(self) -> AsyncIterator[CacheEntry]:
        """Every live entry, in no order (to build an index at start)."""
        ...

    async def feed_cursor(self) -> str:
        """The feed's current end: `added_since` from it returns only later additions."""
        ...

    async def added_since(self, cursor: str, limit: int) -> FeedBatch:
        """Up to `limit` entries added after `cursor` (this replica's own included)."""
        ...
