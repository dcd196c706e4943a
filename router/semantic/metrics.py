"""Prometheus metrics of the semantic stage and the semantic cache's outcomes.

The cache's own counts (evictions, store errors, entries per category) are read from
it at scrape time: `triskel.router.semantic_cache.metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Signals and cache lookups take microseconds; an embedding of a long text, milliseconds.
_FAST_BUCKETS_S = (
    *(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005),
    *(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05),
)


class SemanticMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._decisions = Counter(
            "triskel_semantic_decisions_total",
            "Requests routed by the semantic stage, by decision, chosen model and category.",
            ["decision", "model", "category"],
            registry=registry,
        )
        self._blocked = Counter(
            "triskel_semantic_blocked_total",
            "Requests refused by a blocking decision.",
            ["decision"],
            registry=registry,
        )
        self._signal_s = Histogram(
            "triskel_semantic_signal_seconds",
            "Time one signal took on one request.",
            ["signal"],
            buckets=_FAST_BUCKETS_S,
            registry=registry,
        )
        self._stage_s = Histogram(
            "triskel_semantic_stage_seconds",
            "The whole semantic stage per request: every signal and the one embedding.",
            buckets=_FAST_BUCKETS_S,
            registry=registry,
        )
        self._cache = Counter(
            "triskel_semantic_cache_requests_total",
            "Semantic cache outcomes per category: hit, miss or bypass.",
            ["category", "outcome"],
            registry=registry,
        )
        self._cache_lookup_s = Histogram(
            "triskel_semantic_cache_lookup_seconds",
            "One cache lookup: exact path, vector search, guards and the entry's fetch.",
            buckets=_FAST_BUCKETS_S,
            registry=registry,
        )

    def observe_decision(self, decision: str, model: str, category: str) -> None:
        self._decisions.labels(decision, model, category).inc()

    def observe_blocked(self, decision: str) -> None:
        self._blocked.labels(decision).inc()

    def observe_stage(self, seconds: float, signal_seconds: tuple[tuple[str, float], ...]) -> None:
        self._stage_s.observe(seconds)
        for signal, signal_s in signal_seconds:
            self._signal_s.labels(signal).observe(signal_s)

    def observe_cache(self, category: str, outcome: str, lookup_s: float | None = None) -> None:
        self._cache.labels(category, outcome).inc()
        if lookup_s is not None:
            self._cache_lookup_s.observe(lookup_s)
