"""The semantic cache on the router's request path: look up before any worker, replay a
hit as a stream, store a complete answer afterwards.

    routed request ──► plan(): bypass? (named model, header, category, not replayable,
                       no cache) ──► key, embedding, guard, settings under load
                   ──► SemanticCache.lookup ──► hit: replay() | miss: serve, then store()

A request the client sent to a model by name skips the cache with the semantic stage:
its category is unknown. Storing happens after the answer's last event, off the
request's path.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from triskel.router.admission import parse_tenant
from triskel.router.scheduling.producers.latency_predictor import predict_ttft_ms
from triskel.router.scheduling.types import Endpoint
from triskel.router.semantic.metrics import SemanticMetrics
from triskel.router.semantic.stage import Routed
from triskel.router.semantic_cache.adaptive import Effective, effective_settings
from triskel.router.semantic_cache.cache import SemanticCache
from triskel.router.semantic_cache.content import content_text
from triskel.router.semantic_cache.entries import CachedAnswer, CacheEntry
from triskel.router.semantic_cache.guards import DetectsLanguage, QueryGuard
from triskel.router.semantic_cache.index import Vector
from triskel.router.semantic_cache.keys import CacheKey, cache_key, is_replayable
from triskel.router.semantic_cache.outcomes import StoreResult
from triskel.router.types import (
    NO_DECISION,
    CacheStatus,
    FinishEvent,
    GenerationEvent,
    TokenEvent,
)

# `x-triskel-cache: bypass`, or HTTP's `cache-control: no-cache` / `no-store`.
BYPASS_HEADER = "x-triskel-cache"
_NO_CACHE = ("no-cache", "no-store")


@dataclass(frozen=True, slots=True)
class CachePlan:
    """What the cache decided for one request, and what a miss needs to store later."""

    status: CacheStatus
    reason: str
    category: str | None = None
    key: CacheKey | None = None
    vector: Vector | None = None
    guard: QueryGuard | None = None
    effective: Effective | None = None
    hit: CacheEntry | None = None
    lookup_s: float | None = None


BYPASS = CachePlan(CacheStatus.BYPASS, "not routed by a semantic decision")


def model_pressure(
    endpoints: Sequence[Endpoint], prompt_tokens: int, slo_ttft_ms: float | None
) -> float:
    """Predicted TTFT of the model's best prefill worker over its TTFT SLO; NaN when
    either is unknown (no workers, no SLO): the cache then keeps its base settings."""
    if slo_ttft_ms is None or not endpoints:
        return math.nan
    return min(predict_ttft_ms(e, prompt_tokens) for e in endpoints) / slo_ttft_ms


class RequestCache:
    def __init__(
        self,
        cache: SemanticCache | None,
        detector: DetectsLanguage,
        pressure: Callable[[str, int], float],
        metrics: SemanticMetrics | None = None,
    ) -> None:
        """`pressure(model, prompt_tokens)`: see `model_pressure`."""
        self._cache = cache
        self._detector = detector
        self._pressure = pressure
        self._metrics = metrics
        self._storing: set[asyncio.Task[StoreResult]] = set()

    async def plan(self, routed: Routed) -> CachePlan:
        plan = await self._plan(routed)
        if self._metrics is not None and plan.category is not None:
            self._metrics.observe_cache(plan.category, plan.status.value, plan.lookup_s)
        return plan

    async def _plan(self, routed: Routed) -> CachePlan:
        spec, request = routed.cache, routed.request
        if self._cache is None or spec is None or not spec.enabled:
            return BYPASS
        if routed.decision == NO_DECISION or routed.category is None:
            return BYPASS
        category = spec.category(routed.category)
        if category is None or not category.enabled:
            return CachePlan(CacheStatus.BYPASS, "category not cached", routed.category)
        if _asks_bypass(request.headers):
            return CachePlan(CacheStatus.BYPASS, "bypass requested", routed.category)
        if not is_replayable(request, category):
            return CachePlan(CacheStatus.BYPASS, "sampled, not replayable", routed.category)
        key = cache_key(
            request,
            category=category.name,
            tenant=parse_tenant(request.headers),
            model=request.model,
            endpoint="chat" if request.messages is not None else "completion",
        )
        vector: Vector | None = None
        guard: QueryGuard | None = None
        if key.query_text is not None and routed.embedder is not None:
            if routed.embedder.dim != self._cache.config.ndim:
                # The index is built for the default model's vectors.
                reason = f"embedding model {routed.embedder.name!r} not indexable"
                return CachePlan(CacheStatus.BYPASS, reason, routed.category)
            # Content words only: framing words dominate a short prompt's vector.
            vector = routed.embedder.embed([content_text(key.query_text)])[0]
            guard = QueryGuard(key.query_text, self._detector)
        prompt_tokens = len(key.query_text or "") // 4
        effective = effective_settings(category, self._pressure(request.model, prompt_tokens))
        found = await self._cache.lookup(key, vector, guard, effective)
        return CachePlan(
            found.status,
            found.reason,
            category.name,
            key,
            vector,
            guard,
            effective,
            found.entry,
            found.seconds,
        )

    def store_later(self, plan: CachePlan, pieces: Sequence[str], finish: FinishEvent) -> None:
        """Stores a miss's complete answer in the background (the client has it already)."""
        if self._cache is None or plan.status is not CacheStatus.MISS:
            return
        assert plan.key is not None and plan.effective is not None
        answer = CachedAnswer(
            tuple(pieces), finish.finish_reason, finish.prompt_tokens, finish.completion_tokens
        )
        task = asyncio.create_task(self._store(plan, answer))
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)

    async def _store(self, plan: CachePlan, answer: CachedAnswer) -> StoreResult:
        assert self._cache is not None and plan.key is not None and plan.effective is not None
        guard = None if plan.guard is None else plan.guard()
        return await self._cache.store(plan.key, plan.vector, guard, answer, plan.effective)

    async def aclose(self) -> None:
        """Waits for stores under way (each bounded by the store's call timeout)."""
        await asyncio.gather(*self._storing, return_exceptions=True)


def replay(entry: CacheEntry) -> Iterator[GenerationEvent]:
    """A hit as a stream: the stored chunks, then a finish whose usage counts every
    prompt token as cached. Token ids are not stored, so chunks carry none."""
    answer = entry.answer
    for piece in answer.pieces:
        yield TokenEvent(piece, ())
    yield FinishEvent(
        finish_reason=answer.finish_reason,
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        cached_prompt_tokens=answer.prompt_tokens,
    )


def _asks_bypass(headers: dict[str, str]) -> bool:
    if headers.get(BYPASS_HEADER, "").strip().lower() == "bypass":
        return True
    control = headers.get("cache-control", "").lower()
    return any(word in control for word in _NO_CACHE)
