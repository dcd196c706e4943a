"""The SemanticCache facade over the memory store, with vectors at chosen angles.

A vector at `d` degrees from the query has cosine similarity cos(d): 10° → 0.985
(above a 0.95 threshold), 30° → 0.866 (below it).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from redis.exceptions import ConnectionError as RedisConnectionError

from triskel.router.semantic_cache.adaptive import Effective
from triskel.router.semantic_cache.cache import SemanticCache
from triskel.router.semantic_cache.config import SemanticCacheConfig
from triskel.router.semantic_cache.entries import CachedAnswer, CacheEntry
from triskel.router.semantic_cache.guards import Guard, guard_of
from triskel.router.semantic_cache.index import Vector
from triskel.router.semantic_cache.keys import CacheKey, cache_key
from triskel.router.semantic_cache.memory_store import MemoryCacheStore
from triskel.router.semantic_cache.outcomes import StoreResult
from triskel.router.semantic_cache.store import FeedBatch
from triskel.router.types import CacheStatus, ChatMessage, GenerationRequest, TextPart

from support.waiting import wait_until

NDIM = 8
START_S = 1_700_000_000.0
EFFECTIVE = Effective(threshold=0.95, ttl_seconds=60, max_entries=100)
ANSWER = CachedAnswer(("Straw", "berries."), "stop", 12, 3)


class FakeClock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


class NoLanguage:
    def detect(self, text: str) -> str | None:
        return None


class FlakyStore(MemoryCacheStore):
    """A memory store that raises Redis' ConnectionError while `is_down`."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.is_down = False
        self.num_calls = 0

    def _check(self) -> None:
        self.num_calls += 1
        if self.is_down:
            raise RedisConnectionError("Connection refused")

    async def get(self, entry_id: int) -> CacheEntry | None:
        self._check()
        return await super().get(entry_id)

    async def put(self, entry: CacheEntry, ttl_s: int) -> None:
        self._check()
        await super().put(entry, ttl_s)

    async def exact(self, exact_hash: str) -> int | None:
        self._check()
        return await super().exact(exact_hash)

    async def added_since(self, cursor: str, limit: int) -> FeedBatch:
        self._check()
        return await super().added_since(cursor, limit)


class Rig:
    """One cache replica and the helpers to ask it in a line."""

    def __init__(self, cache: SemanticCache) -> None:
        self.cache = cache

    async def store(
        self,
        text: str,
        degrees: float,
        *,
        system: str = "Be brief.",
        answer: CachedAnswer = ANSWER,
        effective: Effective = EFFECTIVE,
        tenant: str = "acme",
    ) -> StoreResult:
        key = key_of(text, system=system, tenant=tenant)
        return await self.cache.store(key, at_angle(degrees), guard(text), answer, effective)

    async def lookup(
        self, text: str, degrees: float, *, system: str = "Be brief.", tenant: str = "acme"
    ) -> tuple[CacheStatus, str, float]:
        key = key_of(text, system=system, tenant=tenant)
        found = await self.cache.lookup(key, at_angle(degrees), guard(text), EFFECTIVE)
        return found.status, found.reason, found.similarity


def key_of(text: str, *, system: str = "Be brief.", tenant: str = "acme") -> CacheKey:
    messages = (
        ChatMessage("system", (TextPart(system),)),
        ChatMessage("user", (TextPart(text),)),
    )
    request = GenerationRequest(request_id="r", model="auto", messages=messages, temperature=0.0)
    return cache_key(request, category="general", tenant=tenant, model="llama", endpoint="chat")


def at_angle(degrees: float) -> Vector:
    radians = math.radians(degrees)
    vector = np.zeros(NDIM, dtype=np.float32)
    vector[:2] = (math.cos(radians), math.sin(radians))
    return vector


def guard(text: str) -> Guard:
    return guard_of(text, NoLanguage())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START_S)


@pytest.fixture
def monotonic() -> FakeClock:
    return FakeClock(0.0)


@pytest.fixture
def store(clock: FakeClock) -> FlakyStore:
    return FlakyStore(clock)


@pytest_asyncio.fixture
async def caches() -> AsyncIterator[list[SemanticCache]]:
    """Every replica opened by a test; all closed after it."""
    opened: list[SemanticCache] = []
    yield opened
    for cache in opened:
        await cache.aclose()


def open_rig(
    store: FlakyStore, clock: FakeClock, monotonic: FakeClock, caches: list[SemanticCache]
) -> Rig:
    config = SemanticCacheConfig(
        ndim=NDIM,
        call_timeout_s=1.0,
        backoff_initial_s=1.0,
        backoff_max_s=4.0,
        sync_interval_s=0.01,
    )
    caches.append(SemanticCache(store, config, clock=clock, monotonic=monotonic))
    return Rig(caches[-1])


@pytest.fixture
def rig(
    store: FlakyStore, clock: FakeClock, monotonic: FakeClock, caches: list[SemanticCache]
) -> Rig:
    return open_rig(store, clock, monotonic, caches)


@pytest.mark.asyncio
async def test_the_same_prompt_hits_exactly(rig: Rig) -> None:
    assert await rig.store("List red fruits", 0) is StoreResult.STORED
    # Whitespace aside, the same text: the exact path answers, whatever the vector.
    assert await rig.lookup("List  red fruits ", 45) == (CacheStatus.HIT, "exact", 1.0)


@pytest.mark.asyncio
async def test_a_close_neighbour_hits_and_a_far_one_misses(rig: Rig) -> None:
    await rig.store("List red fruits", 0)
    status, reason, similarity = await rig.lookup("List some red fruits", 10)
    assert (status, reason) == (CacheStatus.HIT, "semantic")
    assert similarity == pytest.approx(math.cos(math.radians(10)), abs=1e-3)
    # A miss tells the similarity of the neighbour it turned away.
    status, reason, similarity = await rig.lookup("List some red fruits", 30)
    assert (status, reason) == (CacheStatus.MISS, "below threshold")
    assert similarity == pytest.approx(math.cos(math.radians(30)), abs=1e-3)


@pytest.mark.asyncio
async def test_the_hit_carries_the_stored_answer(rig: Rig) -> None:
    await rig.store("List red fruits", 0)
    found = await rig.cache.lookup(
        key_of("List some red fruits"), at_angle(5), guard("List some red fruits"), EFFECTIVE
    )
    assert found.entry is not None and found.entry.answer == ANSWER
    assert found.entry.answer.text == "Strawberries."
    assert found.seconds > 0


@pytest.mark.asyncio
async def test_a_neighbour_the_guards_reject_does_not_answer(rig: Rig) -> None:
    await rig.store("List red fruits", 0)
    status, reason, similarity = await rig.lookup("List fruits that are not red", 5)
    assert (status, reason) == (CacheStatus.MISS, "guard: negation differs")
    assert similarity == pytest.approx(math.cos(math.radians(5)), abs=1e-3)


@pytest.mark.asyncio
async def test_a_neighbour_in_another_conversation_does_not_answer(rig: Rig) -> None:
    await rig.store("List red fruits", 0, system="Answer in rhymes.")
    assert await rig.lookup("List some red fruits", 0) == (CacheStatus.MISS, "no neighbour", 0.0)


@pytest.mark.asyncio
async def test_another_tenant_never_sees_the_entry(rig: Rig) -> None:
    await rig.store("List red fruits", 0, tenant="acme")
    assert (await rig.lookup("List red fruits", 0, tenant="globex"))[0] is CacheStatus.MISS


@pytest.mark.asyncio
async def test_the_search_widens_past_other_conversations_crowding_the_nearest_places(
    rig: Rig,
) -> None:
    # 40 entries of other conversations sit nearer the query than the one that may answer.
    for number in range(40):
        await rig.store(f"List red fruits {number}", 0.1, system=f"Persona {number}.")
    await rig.store("List red fruits", 8)
    status, reason, _ = await rig.lookup("List some red fruits", 0)
    assert (status, reason) == (CacheStatus.HIT, "semantic")


@pytest.mark.asyncio
async def test_an_expired_entry_misses_and_leaves_the_index(rig: Rig, clock: FakeClock) -> None:
    await rig.store("List red fruits", 0)
    clock.now_s += 60  # the entry's whole lifetime
    # The exact hash knew the entry: similarity 1.
    assert await rig.lookup("List red fruits", 0) == (CacheStatus.MISS, "expired", 1.0)
    assert rig.cache.num_indexed == 0


@pytest.mark.asyncio
async def test_sync_forgets_expired_entries_nobody_asked_for(rig: Rig, clock: FakeClock) -> None:
    await rig.store("List red fruits", 0)
    await rig.cache.sync()  # loads the index (empty store then: only this entry)
    clock.now_s += 60
    await rig.cache.sync()
    assert rig.cache.num_indexed == 0


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (CachedAnswer((), "stop", 5, 0), "empty"),
        (CachedAnswer(("", ""), "stop", 5, 0), "empty pieces"),
        (CachedAnswer(("Half an ans",), "error", 5, 3), "did not finish"),
        (CachedAnswer(("Half an ans",), "abort", 5, 3), "did not finish"),
    ],
)
@pytest.mark.asyncio
async def test_incomplete_answers_are_refused(rig: Rig, answer: CachedAnswer, why: str) -> None:
    assert await rig.store("List red fruits", 0, answer=answer) is StoreResult.REFUSED, why
    assert rig.cache.num_indexed == 0
    assert rig.cache.counters.category("general").num_refused == 1


@pytest.mark.asyncio
async def test_a_length_cut_answer_is_stored(rig: Rig) -> None:
    # finish_reason "length": complete for the max_tokens asked (part of the key).
    answer = CachedAnswer(("Straw",), "length", 5, 1)
    assert await rig.store("List red fruits", 0, answer=answer) is StoreResult.STORED


@pytest.mark.asyncio
async def test_the_quota_evicts_the_least_recently_used_and_the_index_follows(
    rig: Rig, store: FlakyStore, clock: FakeClock
) -> None:
    small = Effective(threshold=0.95, ttl_seconds=60, max_entries=2)
    await rig.store("Name a red fruit", 0, effective=small)
    await rig.store("Name a blue fruit", 90, effective=small)
    clock.now_s += 1
    assert (await rig.lookup("Name a red fruit", 0))[0] is CacheStatus.HIT  # used again
    await rig.store("Name a green fruit", 180, effective=small)  # over quota: blue goes
    counters = rig.cache.counters.category("general")
    assert counters.num_evictions == 1 and rig.cache.num_indexed == 2
    assert (await rig.lookup("Name a blue fruit", 90))[0] is CacheStatus.MISS
    assert (await rig.lookup("Name a red fruit", 0))[0] is CacheStatus.HIT


@pytest.mark.asyncio
async def test_a_token_id_request_matches_exactly_only(rig: Rig) -> None:
    request = GenerationRequest(request_id="r", model="llama", prompt_token_ids=(5, 6, 7))
    key = cache_key(
        request, category="general", tenant="acme", model="llama", endpoint="completion"
    )
    assert await rig.cache.store(key, None, None, ANSWER, EFFECTIVE) is StoreResult.STORED
    found = await rig.cache.lookup(key, None, None, EFFECTIVE)
    assert (found.status, found.reason) == (CacheStatus.HIT, "exact")


@pytest.mark.asyncio
async def test_a_vector_of_the_wrong_dimension_is_a_caller_bug(rig: Rig) -> None:
    with pytest.raises(ValueError, match=r"vector shape \(3,\) is not \(8,\)"):
        await rig.cache.store(
            key_of("Hi"), np.ones(3, dtype=np.float32), guard("Hi"), ANSWER, EFFECTIVE
        )


@pytest.mark.asyncio
async def test_counters_per_category(rig: Rig) -> None:
    await rig.store("List red fruits", 0)
    await rig.lookup("List red fruits", 0)
    await rig.lookup("List blue fruits", 90)
    counters = rig.cache.counters.category("general")
    assert (counters.num_stored, counters.num_hits, counters.num_misses) == (1, 1, 1)
    assert counters.lookup_seconds_total > 0


@pytest.mark.asyncio
async def test_store_errors_bypass_and_drop_without_raising_then_recover(
    rig: Rig, store: FlakyStore, monotonic: FakeClock
) -> None:
    await rig.store("List red fruits", 0)
    store.is_down = True
    assert await rig.lookup("List red fruits", 0) == (CacheStatus.BYPASS, "store unavailable", 0.0)
    counters = rig.cache.counters.category("general")
    assert (counters.num_bypasses, counters.num_store_errors) == (1, 1)
    # In the backoff the store is not even called: a bypass, but no new error.
    num_calls = store.num_calls
    assert await rig.store("List blue fruits", 90) is StoreResult.DROPPED
    assert (await rig.lookup("List red fruits", 0))[0] is CacheStatus.BYPASS
    assert store.num_calls == num_calls
    assert (counters.num_dropped, counters.num_bypasses, counters.num_store_errors) == (1, 2, 1)
    store.is_down = False
    monotonic.now_s += 1.0  # the backoff has passed
    assert (await rig.lookup("List red fruits", 0))[0] is CacheStatus.HIT


@pytest.mark.asyncio
async def test_a_replica_learns_other_replicas_entries_from_the_feed(
    store: FlakyStore, clock: FakeClock, monotonic: FakeClock, caches: list[SemanticCache]
) -> None:
    writer, reader = (open_rig(store, clock, monotonic, caches) for _ in range(2))
    await reader.cache.sync()  # loads the (empty) index and takes the feed's position
    await writer.store("List red fruits", 0)
    # A paraphrase needs the vector, which comes with the feed.
    assert (await reader.lookup("List some red fruits", 5))[0] is CacheStatus.MISS
    assert await reader.cache.sync() == 1
    assert (await reader.lookup("List some red fruits", 5))[1] == "semantic"
    # The exact path asks the store, so the same prompt hits before any sync.
    await writer.store("Name a blue fruit", 90)
    assert (await reader.lookup("Name a blue fruit", 90))[1] == "exact"
    assert await reader.cache.sync() == 0  # learnt on the exact hit already


@pytest.mark.asyncio
async def test_a_new_replica_loads_every_live_entry(
    store: FlakyStore, clock: FakeClock, monotonic: FakeClock, caches: list[SemanticCache]
) -> None:
    writer = open_rig(store, clock, monotonic, caches)
    await writer.store("List red fruits", 0)
    await writer.store("Name a blue fruit", 90)
    fresh = open_rig(store, clock, monotonic, caches)
    assert await fresh.cache.load() == 2
    assert (await fresh.lookup("List some red fruits", 5))[1] == "semantic"


@pytest.mark.asyncio
async def test_loading_inserts_in_batches(store: FlakyStore, clock: FakeClock) -> None:
    writer = Rig(SemanticCache(store, SemanticCacheConfig(ndim=NDIM), clock=clock))
    for number in range(5):
        await writer.store(f"Name fruit number {number}", number * 20)
    # Batches of 2: two full ones and a last one of 1.
    fresh = SemanticCache(store, SemanticCacheConfig(ndim=NDIM, load_batch=2), clock=clock)
    assert await fresh.load() == 5
    assert (await Rig(fresh).lookup("Name fruit number 4 please", 81))[1] == "semantic"


@pytest.mark.asyncio
async def test_a_feed_outage_makes_the_replica_load_everything_again(
    store: FlakyStore, clock: FakeClock, monotonic: FakeClock, caches: list[SemanticCache]
) -> None:
    writer, reader = (open_rig(store, clock, monotonic, caches) for _ in range(2))
    await reader.cache.sync()
    store.is_down = True
    await reader.cache.sync()
    assert reader.cache.counters.num_sync_errors == 1
    store.is_down = False
    await writer.store("List red fruits", 0)
    monotonic.now_s += 1.0
    assert await reader.cache.sync() == 1  # a full load
    assert (await reader.lookup("List some red fruits", 5))[1] == "semantic"


@pytest.mark.asyncio
async def test_the_background_task_follows_the_feed(
    store: FlakyStore, clock: FakeClock, monotonic: FakeClock, caches: list[SemanticCache]
) -> None:
    writer, reader = (open_rig(store, clock, monotonic, caches) for _ in range(2))
    await reader.cache.start()
    await writer.store("List red fruits", 0)
    await wait_until(lambda: reader.cache.num_indexed == 1)
    await reader.cache.aclose()
