"""One replica's index of the cache: vectors by partition, plus what lookups check first.

For every entry it knows, a replica keeps what decides a match without the store:
the partition and vector (for the search), the context hash and the guard (checked
before a body is fetched), the exact hash (the fast path) and the expiry (so
entries that expired, here or on another replica, leave the index on time). Bodies
stay in the store. Pure, no I/O.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from triskel.router.semantic_cache.entries import CacheEntry
from triskel.router.semantic_cache.guards import Guard
from triskel.router.semantic_cache.index import HnswParams, PartitionedIndex, Vector
from triskel.router.semantic_cache.keys import Partition


@dataclass(frozen=True, slots=True)
class IndexedEntry:
    entry_id: int
    partition: Partition
    context_hash: str
    exact_hash: str
    guard: Guard | None  # None: exact matches only
    expires_at_s: float


class LocalIndex:
    def __init__(self, ndim: int, params: HnswParams | None = None) -> None:
        self.ndim = ndim
        self._vectors: PartitionedIndex[Partition] = PartitionedIndex(ndim, params)
        self._entries: dict[int, IndexedEntry] = {}
        self._by_exact_hash: dict[str, int] = {}
        self._expiry_heap: list[tuple[float, int]] = []

    @property
    def size(self) -> int:
        return len(self._entries)

    @property
    def num_vectors(self) -> int:
        return self._vectors.size

    def __contains__(self, entry_id: int) -> bool:
        return entry_id in self._entries

    def sizes_by_category(self) -> dict[str, int]:
        """Entries this replica indexes, per category."""
        sizes: dict[str, int] = {}
        for indexed in self._entries.values():
            category = indexed.partition.category
            sizes[category] = sizes.get(category, 0) + 1
        return sizes

    def get(self, entry_id: int) -> IndexedEntry | None:
        return self._entries.get(entry_id)

    def add(self, entry: CacheEntry) -> None:
        """Indexes `entry` (replacing what this id had). Its vector is searched only when
        it has this index's dimension: an entry from a router with another embedding
        model matches exactly only."""
        if self._record(entry):
            self._vectors.add(entry.partition, entry.entry_id, entry.vector())

    def add_many(self, entries: Iterable[CacheEntry]) -> None:
        """`add` for many entries, their vectors inserted in batches on every core."""
        by_partition: dict[Partition, dict[int, CacheEntry]] = defaultdict(dict)
        for entry in entries:
            if self._record(entry):
                by_partition[entry.partition][entry.entry_id] = entry  # the last one wins
        for partition, batch in by_partition.items():
            vectors = np.stack([entry.vector() for entry in batch.values()])
            self._vectors.add_many(partition, list(batch), vectors)

    def _record(self, entry: CacheEntry) -> bool:
        """Records everything but the vector; True when the vector is to be searched."""
        self.remove(entry.entry_id)
        is_searchable = entry.is_semantic and len(entry.vector_bytes) == self.ndim * 4
        self._entries[entry.entry_id] = IndexedEntry(
            entry.entry_id,
            entry.partition,
            entry.context_hash,
            entry.exact_hash,
            entry.guard if is_searchable else None,
            entry.expires_at_s,
        )
        self._by_exact_hash[entry.exact_hash] = entry.entry_id
        heapq.heappush(self._expiry_heap, (entry.expires_at_s, entry.entry_id))
        return is_searchable

    def remove(self, entry_id: int) -> bool:
        indexed = self._entries.pop(entry_id, None)
        if indexed is None:
            return False
        if self._by_exact_hash.get(indexed.exact_hash) == entry_id:
            del self._by_exact_hash[indexed.exact_hash]
        self._vectors.remove(entry_id)
        return True

    def exact(self, exact_hash: str) -> int | None:
        return self._by_exact_hash.get(exact_hash)

    def search(
        self, partition: Partition, vector: Vector, k: int
    ) -> list[tuple[IndexedEntry, float]]:
        """Up to `k` (entry, similarity) pairs of `partition`, most similar first."""
        return [
            (self._entries[entry_id], similarity)
            for entry_id, similarity in self._vectors.search(partition, vector, k)
        ]

    def remove_expired(self, now_s: float) -> list[int]:
        """Removes entries whose expiry has passed; returns their ids."""
        removed: list[int] = []
        while self._expiry_heap and self._expiry_heap[0][0] <= now_s:
            expires_at_s, entry_id = heapq.heappop(self._expiry_heap)
            indexed = self._entries.get(entry_id)
            # A re-stored entry left its old expiry in the heap: only the current one counts.
            if indexed is not None and indexed.expires_at_s == expires_at_s:
                self.remove(entry_id)
                removed.append(entry_id)
        return removed
