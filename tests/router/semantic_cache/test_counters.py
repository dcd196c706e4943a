"""Per-category counters."""

from __future__ import annotations

from triskel.router.semantic_cache.counters import CacheCounters


def test_categories_are_created_on_first_use_and_kept() -> None:
    counters = CacheCounters()
    counters.category("code").num_hits += 1
    counters.category("code").num_bypasses += 2
    counters.category("chat").num_misses += 1
    assert set(counters.categories) == {"code", "chat"}
    code = counters.category("code")
    assert code.num_hits == 1 and code.num_lookups == 3  # hits + misses + bypasses
