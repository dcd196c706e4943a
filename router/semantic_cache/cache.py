"""The semantic cache as the router uses it: `lookup` before routing, `store` after.

    lookup(key, vector, guard, effective)
      1. exact: this replica's exact map, else the store's ──► body ──► hit "exact"
      2. nearest neighbours of `vector` in the key's partition, most similar first:
           other context ─► skip     under threshold ─► stop: miss "below threshold"
           guards disagree ─► skip   body gone ─► forget it, skip
           else ─► hit "semantic" (and the entry moves up its category's LRU order)
      3. nothing left: miss, with the first reason a neighbour was turned away (and
         that neighbour's similarity, for tuning thresholds)

The search asks for `search_k` neighbours and widens (x4, up to `max_search_k`)
only while every neighbour returned is still above the threshold: other
conversations' entries share a partition and may crowd the nearest places.

Store errors never leave the facade: a lookup returns `bypass` ("store unavailable"),
a store drops the answer, and both are counted; after a failure the store is left
alone for a backoff (see `breaker.py`), so an outage costs requests no time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable

import numpy as np

from triskel.router.semantic_cache.adaptive import Effective
from triskel.router.semantic_cache.breaker import StoreBreaker, StoreUnavailable
from triskel.router.semantic_cache.config import SemanticCacheConfig
from triskel.router.semantic_cache.counters import CacheCounters, CategoryCounters
from triskel.router.semantic_cache.entries import (
    COMPLETE_FINISH_REASONS,
    CachedAnswer,
    CacheEntry,
    entry_id_for,
)
from triskel.router.semantic_cache.guards import Guard, QueryGuard, query_disagreement
from triskel.router.semantic_cache.index import Vector
from triskel.router.semantic_cache.keys import CacheKey
from triskel.router.semantic_cache.local_index import LocalIndex
from triskel.router.semantic_cache.outcomes import (
    GUARD_REASON_PREFIX,
    REASON_BELOW_THRESHOLD,
    REASON_EXACT,
    REASON_EXPIRED,
    REASON_NO_NEIGHBOUR,
    REASON_SEMANTIC,
    REASON_STORE_UNAVAILABLE,
    Lookup,
    StoreResult,
)
from triskel.router.semantic_cache.store import CacheStore
from triskel.router.types import CacheStatus

_log = logging.getLogger(__name__)
# A guard, or how to compute it when first needed (a lookup that finds no neighbour above
# the threshold never needs one); None for a request that only matches exactly.
GuardSource = Guard | QueryGuard | None


class SemanticCache:
    """Lookups and stores over a `CacheStore`, with this replica's `LocalIndex`.

    `clock` is wall-clock seconds (entry lifetimes, shared between replicas);
    `monotonic` times the store's backoff. The store (and its Redis client) belongs
    to the caller: `aclose` stops only what `start` started.
    """

    def __init__(
        self,
        store: CacheStore,
        config: SemanticCacheConfig | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or SemanticCacheConfig()
        self.counters = CacheCounters()
        self._store = store
        self._clock = clock
        self._breaker = StoreBreaker(
            self.config.call_timeout_s,
            self.config.backoff_initial_s,
            self.config.backoff_max_s,
            monotonic,
        )
        self._index = LocalIndex(self.config.ndim, self.config.hnsw)
        self._cursor: str | None = None  # the feed position; None: load everything first
        self._sync_task: asyncio.Task[None] | None = None
        self._is_closing = False

    @property
    def num_indexed(self) -> int:
        return self._index.size

    def entries_by_category(self) -> dict[str, int]:
        return self._index.sizes_by_category()

    async def lookup(
        self, key: CacheKey, vector: Vector | None, guard: GuardSource, effective: Effective
    ) -> Lookup:
        """A cached answer for the request, or why not. `vector` and `guard` are those of
        `key.query_text` (None for a request that only matches exactly); `guard` may be a
        function, called only when a neighbour passes the threshold."""
        started_s = time.perf_counter()
        counters = self.counters.category(key.partition.category)
        try:
            found = await self._lookup(key, vector, guard, effective, counters)
        except StoreUnavailable as error:
            counters.num_store_errors += error.is_failure
            found = Lookup(CacheStatus.BYPASS, REASON_STORE_UNAVAILABLE)
        seconds = time.perf_counter() - started_s
        counters.lookup_seconds_total += seconds
        if found.status is CacheStatus.HIT:
            counters.num_hits += 1
        elif found.status is CacheStatus.MISS:
            counters.num_misses += 1
        else:
            counters.num_bypasses += 1
        return dataclasses.replace(found, seconds=seconds)

    async def store(
        self,
        key: CacheKey,
        vector: Vector | None,
        guard: Guard | None,
        answer: CachedAnswer,
        effective: Effective,
    ) -> StoreResult:
        """Stores a complete answer for `effective.ttl_seconds`, then keeps the category
        within `effective.max_entries` (least recently used entries go).

        Contract: the router calls this only for a request that was replayable and whose
        answer streamed to the end with a 2xx status. Answers that are empty or did not
        finish with "stop" or "length" are refused all the same.
        """
        category = key.partition.category
        counters = self.counters.category(category)
        if not answer.text or answer.finish_reason not in COMPLETE_FINISH_REASONS:
            counters.num_refused += 1
            return StoreResult.REFUSED
        entry = self._entry(key, vector, guard, answer, effective)
        try:
            await self._breaker.call("put", lambda: self._store.put(entry, effective.ttl_seconds))
        except StoreUnavailable as error:
            counters.num_store_errors += error.is_failure
            counters.num_dropped += 1
            return StoreResult.DROPPED
        self._index.add(entry)
        counters.num_stored += 1
        try:
            evicted = await self._breaker.call(
                "evict",
                lambda: self._store.evict_over_quota(
                    category, effective.max_entries, entry.stored_at_s
                ),
            )
        except StoreUnavailable as error:  # the next store evicts
            counters.num_store_errors += error.is_failure
            return StoreResult.STORED
        for entry_id in evicted:
            self._index.remove(entry_id)
        counters.num_evictions += len(evicted)
        return StoreResult.STORED

    async def load(self) -> int:
        """Indexes every live entry of the store (at start, and after an outage, when the
        feed may have been missed); returns how many. Failures are counted, not raised."""
        try:
            return await self._breaker.call(
                "load", self._load_everything, timeout_s=self.config.load_timeout_s
            )
        except StoreUnavailable as error:
            self.counters.num_sync_errors += error.is_failure
            self._cursor = None  # load again on the next sync
            return 0

    async def sync(self) -> int:
        """Indexes what other replicas stored since the last sync, and forgets expired
        entries; returns how many entries were indexed. Failures are counted, not raised."""
        self._index.remove_expired(self._clock())
        if self._cursor is None:
            return await self.load()
        num_indexed = 0
        try:
            cursor = self._cursor
            for _ in range(self.config.max_feed_batches_per_sync):
                read = functools.partial(self._store.added_since, cursor, self.config.feed_batch)
                batch = await self._breaker.call("feed", read)
                num_indexed += sum(self._learn(entry) for entry in batch.entries)
                if batch.cursor == cursor:
                    break
                self._cursor = cursor = batch.cursor
        except StoreUnavailable as error:
            self.counters.num_sync_errors += error.is_failure
            if error.is_failure:
                self._cursor = None  # what happened meanwhile: load it all again
        return num_indexed

    async def start(self) -> None:
        """Loads the index, then follows the feed every `sync_interval_s`."""
        if self._sync_task is None:
            await self.load()
            self._sync_task = asyncio.create_task(
                self._sync_forever(), name="triskel-semantic-cache-sync"
            )

    async def aclose(self) -> None:
        self._is_closing = True  # ends the loop even if a cancellation gets lost
        task, self._sync_task = self._sync_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _lookup(
        self,
        key: CacheKey,
        vector: Vector | None,
        guard: GuardSource,
        effective: Effective,
        counters: CategoryCounters,
    ) -> Lookup:
        found = await self._exact_lookup(key, counters)
        if found.status is CacheStatus.HIT:
            return found
        if vector is None or guard is None or not key.is_semantic:
            return found
        return await self._semantic_lookup(key, vector, guard, effective, counters, found)

    async def _exact_lookup(self, key: CacheKey, counters: CategoryCounters) -> Lookup:
        """A hit, a miss "expired" (the id is known, its body gone), or "no neighbour"."""
        entry_id = self._index.exact(key.exact_hash)
        if entry_id is None:
            entry_id = await self._breaker.call("exact", lambda: self._store.exact(key.exact_hash))
        if entry_id is None:
            return Lookup(CacheStatus.MISS, REASON_NO_NEIGHBOUR)
        entry = await self._fetch(entry_id)
        if entry is None or entry.exact_hash != key.exact_hash:
            return Lookup(CacheStatus.MISS, REASON_EXPIRED, similarity=1.0)
        if entry_id not in self._index:
            self._learn(entry)  # stored by a replica whose feed record is still to come
        await self._touch(entry, counters)
        return Lookup(CacheStatus.HIT, REASON_EXACT, entry, similarity=1.0)

    async def _semantic_lookup(
        self,
        key: CacheKey,
        vector: Vector,
        guard: Guard | QueryGuard,
        effective: Effective,
        counters: CategoryCounters,
        exact_miss: Lookup,
    ) -> Lookup:
        # A miss tells the first reason a neighbour was turned away, with its similarity.
        miss = exact_miss if exact_miss.reason == REASON_EXPIRED else None
        seen: set[int] = set()
        k = self.config.search_k
        while True:
            neighbours = self._index.search(key.partition, vector, k)
            for indexed, similarity in neighbours:
                if indexed.entry_id in seen:
                    continue
                seen.add(indexed.entry_id)
                if similarity < effective.threshold:  # the rest are further still
                    return miss or Lookup(
                        CacheStatus.MISS, REASON_BELOW_THRESHOLD, None, similarity
                    )
                if indexed.context_hash != key.context_hash or indexed.guard is None:
                    continue
                disagreement = query_disagreement(guard, indexed.guard)
                if disagreement is not None:
                    reason = GUARD_REASON_PREFIX + disagreement
                    miss = miss or Lookup(CacheStatus.MISS, reason, None, similarity)
                    continue
                entry = await self._fetch(indexed.entry_id)
                if entry is None:
                    miss = miss or Lookup(CacheStatus.MISS, REASON_EXPIRED, None, similarity)
                    continue
                await self._touch(entry, counters)
                return Lookup(CacheStatus.HIT, REASON_SEMANTIC, entry, similarity)
            if len(neighbours) < k or k >= self.config.max_search_k:
                return miss or Lookup(CacheStatus.MISS, REASON_NO_NEIGHBOUR)
            k = min(k * 4, self.config.max_search_k)

    async def _fetch(self, entry_id: int) -> CacheEntry | None:
        """The entry's body; one that is gone or expired leaves the local index."""
        entry = await self._breaker.call("get", lambda: self._store.get(entry_id))
        if entry is None or entry.expires_at_s <= self._clock():
            self._index.remove(entry_id)
            return None
        return entry

    async def _touch(self, entry: CacheEntry, counters: CategoryCounters) -> None:
        # The answer is in hand: a failed LRU update costs the entry its place, no more.
        try:
            now_s = self._clock()
            await self._breaker.call(
                "touch", lambda: self._store.touch(entry.entry_id, entry.category, now_s)
            )
        except StoreUnavailable as error:
            counters.num_store_errors += error.is_failure

    def _entry(
        self,
        key: CacheKey,
        vector: Vector | None,
        guard: Guard | None,
        answer: CachedAnswer,
        effective: Effective,
    ) -> CacheEntry:
        is_semantic = key.is_semantic and vector is not None and guard is not None
        if is_semantic and vector is not None and vector.shape != (self.config.ndim,):
            raise ValueError(
                f"SemanticCache.store: vector shape {vector.shape} is not ({self.config.ndim},)"
            )
        now_s = self._clock()
        return CacheEntry(
            entry_id=entry_id_for(key.exact_hash),
            partition=key.partition,
            context_hash=key.context_hash,
            exact_hash=key.exact_hash,
            vector_bytes=np.asarray(vector, dtype=np.float32).tobytes() if is_semantic else b"",
            guard=guard if is_semantic else None,
            answer=answer,
            stored_at_s=now_s,
            expires_at_s=now_s + effective.ttl_seconds,
        )

    def _learn(self, entry: CacheEntry) -> bool:
        """Indexes an entry another replica (or this one) stored, unless known or expired."""
        known = self._index.get(entry.entry_id)
        if known is not None and known.expires_at_s == entry.expires_at_s:
            return False
        if entry.expires_at_s <= self._clock():
            return False
        self._index.add(entry)
        return True

    async def _load_everything(self) -> int:
        # The cursor is taken first, so what is stored while loading comes in by the feed.
        cursor = await self._store.feed_cursor()
        fresh = LocalIndex(self.config.ndim, self.config.hnsw)
        now_s = self._clock()
        batch: list[CacheEntry] = []
        async for entry in self._store.all_entries():
            if entry.expires_at_s > now_s:
                batch.append(entry)
            if len(batch) >= self.config.load_batch:
                fresh.add_many(batch)
                batch = []
        fresh.add_many(batch)
        self._index, self._cursor = fresh, cursor
        return fresh.size

    async def _sync_forever(self) -> None:
        while not self._is_closing:
            try:
                await self.sync()
            except Exception:
                # Store failures are absorbed by sync; anything else is a bug, but a dead
                # loop would stop this replica learning other replicas' entries: log, go on.
                _log.exception("semantic cache sync failed")
            await asyncio.sleep(self.config.sync_interval_s)
