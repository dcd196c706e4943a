"""The cache's counts on the router's /metrics, read at scrape time."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from triskel.router.semantic_cache.adaptive import Effective
from triskel.router.semantic_cache.cache import SemanticCache
from triskel.router.semantic_cache.entries import CachedAnswer
from triskel.router.semantic_cache.keys import cache_key
from triskel.router.semantic_cache.memory_store import MemoryCacheStore
from triskel.router.semantic_cache.metrics import watch_cache
from triskel.router.types import GenerationRequest


@pytest.mark.asyncio
async def test_entries_and_evictions_per_category() -> None:
    cache = SemanticCache(MemoryCacheStore())
    registry = CollectorRegistry()
    watch_cache(registry, cache)
    effective = Effective(0.8, 600, max_entries=2)
    answer = CachedAnswer(("x",), "stop", 3, 1)
    for index in range(3):  # a quota of two: the first entry is evicted
        request = GenerationRequest(f"r{index}", "m", prompt=f"prompt {index}", temperature=0)
        key = cache_key(request, category="code", tenant="t", model="m", endpoint="completion")
        vector = np.eye(cache.config.ndim, dtype=np.float32)[index]
        await cache.store(key, vector, None, answer, effective)
    assert registry.get_sample_value("triskel_semantic_cache_entries", {"category": "code"}) == 2
    evictions = registry.get_sample_value(
        "triskel_semantic_cache_evictions_total", {"category": "code"}
    )
    assert evictions == 1
