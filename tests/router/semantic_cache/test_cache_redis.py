"""The semantic cache end to end: real WordLlama embeddings, a real redis-server, replicas.

Similarities quoted in comments are WordLlama's (256 dimensions) for the two texts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from triskel.router.semantic.embedding import Embedder
from triskel.router.semantic_cache.adaptive import Effective
from triskel.router.semantic_cache.cache import SemanticCache
from triskel.router.semantic_cache.config import SemanticCacheConfig
from triskel.router.semantic_cache.entries import CachedAnswer
from triskel.router.semantic_cache.guards import Guard, LanguageDetector, guard_of
from triskel.router.semantic_cache.index import Vector
from triskel.router.semantic_cache.keys import CacheKey, cache_key
from triskel.router.semantic_cache.outcomes import Lookup, StoreResult
from triskel.router.semantic_cache.redis_store import RedisCacheConfig, RedisCacheStore
from triskel.router.types import CacheStatus, ChatMessage, GenerationRequest, TextPart

from support.redis_server import RedisServer, eventually

EFFECTIVE = Effective(threshold=0.95, ttl_seconds=600, max_entries=1000)
# Short backoffs so that recovery is seen within a test; generous call bounds for CI.
CONFIG = SemanticCacheConfig(
    ndim=256, call_timeout_s=2.0, backoff_initial_s=0.05, backoff_max_s=0.2, sync_interval_s=0.05
)
REVERSE_LIST = "How do I reverse a list in Python?"


class Replica:
    """One router's cache, asked in plain text."""

    def __init__(
        self, cache: SemanticCache, embedder: Embedder, detector: LanguageDetector
    ) -> None:
        self.cache = cache
        self._embedder = embedder
        self._detector = detector

    async def store(
        self,
        text: str,
        *,
        tenant: str = "acme",
        category: str = "general",
        effective: Effective = EFFECTIVE,
    ) -> StoreResult:
        answer = CachedAnswer((f"An answer to: {text}",), "stop", 10, 5)
        key, vector, guard = self._query(text, tenant, category)
        return await self.cache.store(key, vector, guard, answer, effective)

    async def lookup(self, text: str, *, tenant: str = "acme", category: str = "general") -> Lookup:
        key, vector, guard = self._query(text, tenant, category)
        return await self.cache.lookup(key, vector, guard, EFFECTIVE)

    def _query(self, text: str, tenant: str, category: str) -> tuple[CacheKey, Vector, Guard]:
        messages = (ChatMessage("user", (TextPart(text),)),)
        request = GenerationRequest(
            request_id="r", model="auto", messages=messages, temperature=0.0
        )
        key = cache_key(request, category=category, tenant=tenant, model="llama", endpoint="chat")
        assert key.query_text is not None
        vector = self._embedder.embed([key.query_text])[0]
        return key, vector, guard_of(key.query_text, self._detector)


OpenReplica = Callable[..., Replica]


@pytest_asyncio.fixture
async def open_replica(
    redis_url: str,
    redis_cache_config: RedisCacheConfig,
    connect_bytes_redis: Callable[[str], Redis],
    embedder: Embedder,
    detector: LanguageDetector,
) -> AsyncIterator[OpenReplica]:
    """Opens router replicas on one Redis key namespace (the session's server by default)."""
    caches: list[SemanticCache] = []

    def open_replica(url: str = redis_url) -> Replica:
        store = RedisCacheStore(connect_bytes_redis(url), redis_cache_config)
        caches.append(SemanticCache(store, CONFIG))
        return Replica(caches[-1], embedder, detector)

    yield open_replica
    for cache in caches:
        await cache.aclose()


@pytest.mark.asyncio
async def test_the_same_prompt_hits(open_replica: OpenReplica) -> None:
    replica = open_replica()
    assert await replica.store(REVERSE_LIST) is StoreResult.STORED
    found = await replica.lookup(REVERSE_LIST)
    assert (found.status, found.reason) == (CacheStatus.HIT, "exact")
    assert found.entry is not None
    assert found.entry.answer.text == f"An answer to: {REVERSE_LIST}"


@pytest.mark.asyncio
async def test_a_paraphrase_hits(open_replica: OpenReplica) -> None:
    replica = open_replica()
    await replica.store(REVERSE_LIST)
    found = await replica.lookup("How can I reverse a Python list?")  # 0.985
    assert (found.status, found.reason) == (CacheStatus.HIT, "semantic")
    assert found.similarity >= EFFECTIVE.threshold


@pytest.mark.asyncio
async def test_a_near_miss_below_the_threshold_misses(open_replica: OpenReplica) -> None:
    replica = open_replica()
    await replica.store(REVERSE_LIST)
    found = await replica.lookup("How do I reverse a string in Python?")  # 0.885
    assert (found.status, found.reason) == (CacheStatus.MISS, "below threshold")
    assert 0.85 < found.similarity < EFFECTIVE.threshold  # the neighbour turned away


@pytest.mark.parametrize(
    ("stored", "asked", "reason"),
    [
        # 0.965: close enough for the embedding, opposite for the reader.
        ("List some red fruits.", "List some fruits that are not red.", "negation differs"),
        # 0.998: one digit apart.
        ("Convert 5 miles to kilometers", "Convert 50 miles to kilometers", "numbers differ"),
    ],
)
@pytest.mark.asyncio
async def test_a_near_miss_above_the_threshold_is_stopped_by_a_guard(
    open_replica: OpenReplica, stored: str, asked: str, reason: str
) -> None:
    replica = open_replica()
    await replica.store(stored)
    found = await replica.lookup(asked)
    assert (found.status, found.reason) == (CacheStatus.MISS, f"guard: {reason}")


@pytest.mark.asyncio
async def test_an_entry_expires_after_its_ttl(open_replica: OpenReplica) -> None:
    replica = open_replica()
    one_second = dataclasses.replace(EFFECTIVE, ttl_seconds=1)
    await replica.store(REVERSE_LIST, effective=one_second)
    assert (await replica.lookup(REVERSE_LIST)).status is CacheStatus.HIT
    misses: list[Lookup] = []

    async def expired() -> bool:
        found = await replica.lookup(REVERSE_LIST)
        if found.status is CacheStatus.MISS:
            misses.append(found)
        return bool(misses)

    await eventually(expired, timeout_s=5.0)
    assert misses[0].reason == "expired"
    assert replica.cache.num_indexed == 0


@pytest.mark.asyncio
async def test_the_quota_evicts_the_least_recently_used_of_its_category_only(
    open_replica: OpenReplica,
) -> None:
    replica = open_replica()
    two = dataclasses.replace(EFFECTIVE, max_entries=2)
    await replica.store("What is the capital of France?", category="code", effective=two)
    await replica.store("How do I bake sourdough bread?", category="code", effective=two)
    await replica.store("Write a haiku about autumn leaves", category="chat", effective=two)
    await replica.store("Summarise the plot of Hamlet", category="chat", effective=two)
    # Used again: France is now more recent than bread.
    assert (await replica.lookup("What is the capital of France?", category="code")).status is (
        CacheStatus.HIT
    )
    await replica.store("Explain how a hash table works", category="code", effective=two)
    bread = await replica.lookup("How do I bake sourdough bread?", category="code")
    assert bread.status is CacheStatus.MISS
    for text in ("What is the capital of France?", "Explain how a hash table works"):
        assert (await replica.lookup(text, category="code")).status is CacheStatus.HIT
    # The chat category, at its quota too, lost nothing.
    for text in ("Write a haiku about autumn leaves", "Summarise the plot of Hamlet"):
        assert (await replica.lookup(text, category="chat")).status is CacheStatus.HIT
    assert replica.cache.counters.category("code").num_evictions == 1
    assert replica.cache.counters.category("chat").num_evictions == 0


@pytest.mark.asyncio
async def test_tenants_never_share_entries(open_replica: OpenReplica) -> None:
    replica = open_replica()
    await replica.store(REVERSE_LIST, tenant="acme")
    assert (await replica.lookup(REVERSE_LIST, tenant="globex")).status is CacheStatus.MISS
    assert (await replica.lookup("How can I reverse a Python list?", tenant="globex")).status is (
        CacheStatus.MISS
    )
    assert (await replica.lookup(REVERSE_LIST, tenant="acme")).status is CacheStatus.HIT


@pytest.mark.asyncio
async def test_two_replicas_share_entries_exactly_at_once_and_semantically_by_the_feed(
    open_replica: OpenReplica,
) -> None:
    first, second = open_replica(), open_replica()
    await second.cache.sync()  # an empty index, and the feed's position
    await first.store(REVERSE_LIST)
    # The exact path reads the store's exact map: no sync needed.
    exact = await second.lookup(REVERSE_LIST)
    assert (exact.status, exact.reason) == (CacheStatus.HIT, "exact")
    await first.store("What is the capital city of France?")
    paraphrase = "Which city is the capital of France?"  # 0.984
    assert (await second.lookup(paraphrase)).status is CacheStatus.MISS  # not indexed yet
    assert await second.cache.sync() == 1  # the feed brings the vector
    semantic = await second.lookup(paraphrase)
    assert (semantic.status, semantic.reason) == (CacheStatus.HIT, "semantic")


@pytest.mark.asyncio
async def test_a_new_replica_loads_the_index_at_start(open_replica: OpenReplica) -> None:
    first = open_replica()
    await first.store(REVERSE_LIST)
    await first.store("Summarise the plot of Hamlet")
    late = open_replica()
    await late.cache.start()
    assert late.cache.num_indexed == 2
    found = await late.lookup("How can I reverse a Python list?")
    assert (found.status, found.reason) == (CacheStatus.HIT, "semantic")


@pytest.mark.asyncio
async def test_redis_down_means_bypass_and_drop_without_errors_then_recovery(
    open_replica: OpenReplica, private_redis: RedisServer
) -> None:
    replica = open_replica(private_redis.url)
    await replica.cache.start()
    await replica.store(REVERSE_LIST)
    private_redis.stop()

    bypassed = await replica.lookup(REVERSE_LIST)
    assert (bypassed.status, bypassed.reason) == (CacheStatus.BYPASS, "store unavailable")
    assert await replica.store("Summarise the plot of Hamlet") is StoreResult.DROPPED
    counters = replica.cache.counters.category("general")
    assert counters.num_bypasses >= 1 and counters.num_dropped == 1
    assert counters.num_store_errors >= 1

    private_redis.start()  # same port, empty: nothing was saved to disk

    async def stored_again() -> bool:
        return await replica.store(REVERSE_LIST) is StoreResult.STORED

    await eventually(stored_again, timeout_s=5.0)
    found = await replica.lookup("How can I reverse a Python list?")
    assert (found.status, found.reason) == (CacheStatus.HIT, "semantic")
