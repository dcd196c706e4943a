"""The semantic cache's counts as Prometheus metrics, read at scrape time.

triskel_semantic_cache_evictions_total{category}      entries evicted over a quota
triskel_semantic_cache_store_errors_total{category}   store (Redis) calls that failed
triskel_semantic_cache_dropped_total{category}        answers not stored: store down
triskel_semantic_cache_entries{category}              entries this router indexes
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from triskel.router.semantic_cache.cache import SemanticCache


class CacheCollector(Collector):
    def __init__(self, cache: SemanticCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        evictions = CounterMetricFamily(
            "triskel_semantic_cache_evictions",
            "Entries evicted over a category's quota.",
            labels=["category"],
        )
        errors = CounterMetricFamily(
            "triskel_semantic_cache_store_errors",
            "Cache store calls (Redis) that failed; the request was served without it.",
            labels=["category"],
        )
        dropped = CounterMetricFamily(
            "triskel_semantic_cache_dropped",
            "Complete answers not stored because the store was unavailable.",
            labels=["category"],
        )
        for category, counters in sorted(self._cache.counters.categories.items()):
            evictions.add_metric([category], counters.num_evictions)
            errors.add_metric([category], counters.num_store_errors)
            dropped.add_metric([category], counters.num_dropped)
        entries = GaugeMetricFamily(
            "triskel_semantic_cache_entries",
            "Entries this router indexes, per category.",
            labels=["category"],
        )
        for category, count in sorted(self._cache.entries_by_category().items()):
            entries.add_metric([category], count)
        yield from (evictions, errors, dropped, entries)


def watch_cache(registry: CollectorRegistry, cache: SemanticCache) -> None:
    registry.register(CacheCollector(cache))
