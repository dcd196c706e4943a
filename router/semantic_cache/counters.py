"""What the semantic cache did, per category: for metrics and tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class CategoryCounters:
    num_hits: int = 0
    num_misses: int = 0
    num_bypasses: int = 0  # store unavailable: the request went to a model uncached
    num_stored: int = 0
    num_dropped: int = 0  # answers not stored because the store was unavailable
    num_refused: int = 0  # answers not worth storing (empty, or not finished)
    num_evictions: int = 0  # entries this replica evicted to keep the quota
    num_store_errors: int = 0  # store calls that failed (not those skipped in backoff)
    lookup_seconds_total: float = 0.0

    @property
    def num_lookups(self) -> int:
        return self.num_hits + self.num_misses + self.num_bypasses


@dataclass(slots=True)
class CacheCounters:
    categories: dict[str, CategoryCounters] = field(default_factory=dict)
    # Failed store calls while following the feed or loading the index.
    num_sync_errors: int = 0

    def category(self, name: str) -> CategoryCounters:
        counters = self.categories.get(name)
        if counters is None:
            counters = self.categories[name] = CategoryCounters()
        return counters
