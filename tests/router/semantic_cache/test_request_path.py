"""The cache on the request path: what is looked up, replayed, stored, and bypassed."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.common.semantic_api import CacheSpec
from triskel.router.semantic.embedding import Embedder
from triskel.router.semantic.stage import Routed
from triskel.router.semantic_cache.cache import SemanticCache
from triskel.router.semantic_cache.content import content_text
from triskel.router.semantic_cache.guards import LanguageDetector
from triskel.router.semantic_cache.memory_store import MemoryCacheStore
from triskel.router.semantic_cache.request_path import RequestCache, replay
from triskel.router.types import (
    CacheStatus,
    ChatMessage,
    FinishEvent,
    GenerationRequest,
    TextPart,
    TokenEvent,
)

STORED = "How do I reverse a list in Python?"
PARAPHRASE = "what's the way to reverse a python list"


def routed(text: str, embedder: Embedder, cache: dict[str, Any], **fields: Any) -> Routed:
    message = ChatMessage("user", (TextPart(text),))
    request = GenerationRequest("r", "m", messages=(message,), **({"temperature": 0.0} | fields))
    spec = CacheSpec.model_validate({"categories": [{"name": "code"} | cache]})
    return Routed(request, "code", "code", None, spec, embedder)


async def store(requests: RequestCache, plan_of: Routed) -> None:
    plan = await requests.plan(plan_of)
    assert plan.status is CacheStatus.MISS
    finish = FinishEvent("stop", 10, 2, 0)
    requests.store_later(plan, ["a", " b"], finish)
    await requests.aclose()


@pytest.mark.asyncio
async def test_a_hit_replays_the_stored_chunks_with_cached_usage(
    embedder: Embedder, detector: LanguageDetector
) -> None:
    requests = RequestCache(SemanticCache(MemoryCacheStore()), detector, lambda m, n: 1.0)
    await store(requests, routed(STORED, embedder, {}))
    plan = await requests.plan(routed(STORED, embedder, {}))
    assert (plan.status, plan.reason) == (CacheStatus.HIT, "exact")
    assert plan.hit is not None
    assert list(replay(plan.hit)) == [
        TokenEvent("a", ()),
        TokenEvent(" b", ()),
        FinishEvent("stop", prompt_tokens=10, completion_tokens=2, cached_prompt_tokens=10),
    ]


@pytest.mark.asyncio
async def test_under_load_the_threshold_loosens_and_returns_when_load_falls(
    embedder: Embedder, detector: LanguageDetector
) -> None:
    a, b = embedder.embed([content_text(STORED), content_text(PARAPHRASE)])
    similarity = float(a @ b)
    # The paraphrase sits between the loaded and the base threshold.
    settings = {
        "similarityThreshold": min(1.0, similarity + 0.02),
        "underLoad": {"minSimilarityThreshold": similarity - 0.02, "maxTtlSeconds": 7200},
    }
    pressure = {"m": 1.0}
    requests = RequestCache(
        SemanticCache(MemoryCacheStore()), detector, lambda model, n: pressure[model]
    )
    await store(requests, routed(STORED, embedder, settings))
    assert (await requests.plan(routed(PARAPHRASE, embedder, settings))).status is CacheStatus.MISS
    pressure["m"] = 2.0  # predicted TTFT twice the SLO: the loosest settings
    loaded = await requests.plan(routed(PARAPHRASE, embedder, settings))
    assert (loaded.status, loaded.reason) == (CacheStatus.HIT, "semantic")
    pressure["m"] = 0.5
    assert (await requests.plan(routed(PARAPHRASE, embedder, settings))).status is CacheStatus.MISS


@pytest.mark.parametrize(
    ("fields", "cache", "headers", "reason"),
    [
        ({"temperature": 0.8}, {}, {}, "sampled, not replayable"),
        ({"temperature": None}, {}, {}, "sampled, not replayable"),
        ({"temperature": 0.8}, {"replaySampled": True}, {}, None),
        ({}, {"enabled": False}, {}, "category not cached"),
        ({}, {}, {"x-triskel-cache": "bypass"}, "bypass requested"),
        ({}, {}, {"cache-control": "no-store"}, "bypass requested"),
    ],
)
@pytest.mark.asyncio
async def test_what_bypasses_the_cache(
    embedder: Embedder,
    detector: LanguageDetector,
    fields: dict[str, Any],
    cache: dict[str, Any],
    headers: dict[str, str],
    reason: str | None,
) -> None:
    requests = RequestCache(SemanticCache(MemoryCacheStore()), detector, lambda m, n: 1.0)
    plan = await requests.plan(routed(STORED, embedder, cache, headers=headers, **fields))
    if reason is None:
        assert plan.status is CacheStatus.MISS
    else:
        assert (plan.status, plan.reason) == (CacheStatus.BYPASS, reason)


@pytest.mark.asyncio
async def test_a_request_that_named_its_model_is_not_cached(
    embedder: Embedder, detector: LanguageDetector
) -> None:
    requests = RequestCache(SemanticCache(MemoryCacheStore()), detector, lambda m, n: 1.0)
    direct = routed(STORED, embedder, {})
    plan = await requests.plan(Routed(direct.request, cache=direct.cache))
    assert plan.status is CacheStatus.BYPASS
