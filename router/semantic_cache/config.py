"""The semantic cache's own settings (the per-category ones come from `CacheSpec`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from triskel.router.semantic_cache.index import HnswParams


@dataclass(frozen=True, slots=True)
class SemanticCacheConfig:
    """Search width, store call bounds and the feed's pace, checked at construction.

    A lookup asks for `search_k` neighbours, widening up to `max_search_k` while all
    are above the threshold; `hnsw` shapes each partition's graph (see `index.py`).
    Each store call on the request path is bounded by `call_timeout_s`; after a
    failure the store is left alone for `backoff_initial_s`, doubling up to
    `backoff_max_s`. The feed is read every `sync_interval_s`, at most
    `max_feed_batches_per_sync` batches of `feed_batch` records at a time; loading
    inserts vectors `load_batch` entries at a time.
    """

    ndim: int = 256  # the embedder's dimension
    hnsw: HnswParams = field(default_factory=HnswParams)
    search_k: int = 8
    max_search_k: int = 256
    call_timeout_s: float = 0.05
    load_timeout_s: float = 120.0  # loading every entry, at start or after an outage
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    sync_interval_s: float = 0.5
    feed_batch: int = 1000
    load_batch: int = 10_000
    max_feed_batches_per_sync: int = 20

    def __post_init__(self) -> None:
        for name in ("ndim", "search_k", "feed_batch", "load_batch", "max_feed_batches_per_sync"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"SemanticCacheConfig.{name} must be >= 1, got {getattr(self, name)}"
                )
        for name in ("call_timeout_s", "load_timeout_s", "backoff_initial_s", "sync_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"SemanticCacheConfig.{name} must be > 0, got {getattr(self, name)}"
                )
        if self.max_search_k < self.search_k:
            raise ValueError(
                f"SemanticCacheConfig.max_search_k ({self.max_search_k}) must be >= "
                f"search_k ({self.search_k})"
            )
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"SemanticCacheConfig.backoff_max_s ({self.backoff_max_s}) must be >= "
                f"backoff_initial_s ({self.backoff_initial_s})"
            )
