"""The semantic cache: answers replayed for prompts that mean the same thing.

    request ──► cache_key (partition, context, exact hash, query text)      keys.py
            ──► embedding of the query text + guard_of(query text)        guards.py
            ──► effective_settings(category, pressure)                    adaptive.py
            ──► SemanticCache.lookup: exact, then neighbours in the partition that
                share the context, pass the threshold and agree on the guards
            ──► hit: replay the stored answer | miss: serve, then SemanticCache.store

Entries live in a `CacheStore` (memory, or Redis shared by router replicas); each
replica indexes their vectors itself (usearch) and follows the store's feed of
additions. Store failures turn into bypasses, never into request errors.
"""

from triskel.router.semantic_cache.adaptive import Effective, effective_settings
from triskel.router.semantic_cache.cache import SemanticCache
from triskel.router.semantic_cache.config import SemanticCacheConfig
from triskel.router.semantic_cache.counters import CacheCounters, CategoryCounters
from triskel.router.semantic_cache.entries import CachedAnswer, CacheEntry
from triskel.router.semantic_cache.guards import Guard, LanguageDetector, guard_of, guards_agree
from triskel.router.semantic_cache.keys import CacheKey, Partition, cache_key, is_replayable
from triskel.router.semantic_cache.memory_store import MemoryCacheStore
from triskel.router.semantic_cache.outcomes import Lookup, StoreResult
from triskel.router.semantic_cache.redis_store import RedisCacheConfig, RedisCacheStore
from triskel.router.semantic_cache.store import CacheStore, FeedBatch

__all__ = [
    "CacheCounters",
    "CacheEntry",
    "CacheKey",
    "CacheStore",
    "CachedAnswer",
    "CategoryCounters",
    "Effective",
    "FeedBatch",
    "Guard",
    "LanguageDetector",
    "Lookup",
    "MemoryCacheStore",
    "Partition",
    "RedisCacheConfig",
    "RedisCacheStore",
    "SemanticCache",
    "SemanticCacheConfig",
    "StoreResult",
    "cache_key",
    "effective_settings",
    "guard_of",
    "guards_agree",
    "is_replayable",
]
