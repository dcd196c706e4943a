"""DualMap: parameters, the two-ring filter, the cache-vs-TTFT picker, and a scheduler run."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
import xxhash

from triskel.common.hashing import BlockHash
from triskel.common.routing_api import RoutingConfig
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins import dualmap
from triskel.router.scheduling.plugins.dualmap import DualMap, create, prefix_key
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.registry import PluginConfigError, PluginRegistry
from triskel.router.scheduling.types import (
    ActiveLoad,
    CycleState,
    Endpoint,
    SchedulingRequest,
    ScoredEndpoint,
    Stage,
)

from support.scheduling import endpoint, request

POOL = [endpoint(f"w{i}") for i in range(16)]


def plugin(kv_index: KvBlockIndex | None = None, **parameters: Any) -> DualMap:
    context = PluginContext(kv_index=kv_index if kv_index is not None else KvBlockIndex())
    return create("dm", parameters, context)


def keyed(key: int, request_id: str = "r") -> SchedulingRequest:
    """A request whose ring key is exactly `key` (one block whose hash is `key`)."""
    return SchedulingRequest(request_id, "m", Stage.PREFILL, [0] * 16, [BlockHash(key)], 4)


def scored(*endpoints: Endpoint) -> list[ScoredEndpoint]:
    return [ScoredEndpoint(e, 0.0) for e in endpoints]


def ids(endpoints: Sequence[Endpoint]) -> list[str]:
    return [e.worker_id for e in endpoints]


# --- parameters -------------------------------------------------------------------------


def test_defaults() -> None:
    parameters = plugin().parameters
    assert (parameters.vnodes_per_worker, parameters.num_prefix_blocks) == (100, 1)
    assert parameters.default_ttft_slo_ms == 2000.0


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"vnodesPerWorker": 0}, "parameters.vnodesPerWorker"),
        ({"vnodesPerWorker": 20_000}, "parameters.vnodesPerWorker"),
        ({"numPrefixBlocks": 0}, "parameters.numPrefixBlocks"),
        ({"defaultTtftSloMs": 0}, "parameters.defaultTtftSloMs"),
        ({"ringSeed": 3}, "parameters.ringSeed"),  # unknown keys are refused
    ],
)
def test_bad_parameters_name_the_plugin_and_field(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PluginConfigError, match=rf"plugin 'dm': {fragment}"):
        plugin(**raw)


# --- the ring key -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_tokens", "num_prefix_blocks", "block_index"),
    [
        (64, 1, 0),  # the first block's hash
        (64, 2, 1),  # block 1's hash chains block 0, so it stands for both
        (40, 4, 1),  # only two full blocks: the last one there is
    ],
)
def test_the_key_is_the_chained_hash_of_the_leading_blocks(
    num_tokens: int, num_prefix_blocks: int, block_index: int
) -> None:
    prompt = request(token_ids=range(num_tokens))
    assert prefix_key(prompt, num_prefix_blocks) == prompt.block_hashes[block_index]


def test_a_prompt_shorter_than_a_block_is_keyed_by_its_token_ids() -> None:
    short = request(token_ids=[5, 6, 7])
    assert short.block_hashes == []
    # Hash of the token ids as uint32s, so equal short prompts share a key.
    expected = xxhash.xxh3_64_intdigest(bytes([5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0]))
    assert prefix_key(short, 1) == expected == prefix_key(request(token_ids=[5, 6, 7]), 1)


# --- filter ---------------------------------------------------------------------------


def test_the_filter_keeps_two_distinct_candidates_in_candidate_order() -> None:
    dm = plugin()
    for i in range(50):
        kept = dm.filter(request(token_ids=range(i, i + 32)), POOL, CycleState())
        assert len(kept) == 2 and kept[0] != kept[1]
        assert ids(kept) == [w for w in ids(POOL) if w in ids(kept)]


def test_the_pair_depends_on_the_prefix_not_on_candidate_order() -> None:
    dm = plugin()
    prompt = request(token_ids=range(100, 164))
    first = ids(dm.filter(prompt, POOL, CycleState()))
    again = ids(dm.filter(prompt, list(reversed(POOL)), CycleState()))
    assert sorted(first) == sorted(again)
    # Same leading block, different tail → same pair (the key is block 0 only).
    other_tail = request(token_ids=[*range(100, 116), *range(900, 948)])
    assert ids(dm.filter(other_tail, POOL, CycleState())) == first


def test_the_pair_is_the_owners_on_two_rings_or_the_next_distinct_one_on_ring_2() -> None:
    dm = plugin()
    small_pool = POOL[:4]
    dm.filter(keyed(0), small_pool, CycleState())  # builds the rings
    first_ring, second_ring = dm.rings
    seen_collision = seen_distinct = False
    for key in range(200):
        owner_1, owner_2 = first_ring.lookup(key), second_ring.lookup(key)
        expected_second = owner_2
        if owner_1 == owner_2:
            seen_collision = True
            expected_second = list(second_ring.walk(key))[1]
        else:
            seen_distinct = True
        assert dm.candidate_ids(keyed(key)) == (owner_1, expected_second)
        kept = dm.filter(keyed(key), small_pool, CycleState())
        assert set(ids(kept)) == {owner_1, expected_second}
    # With 4 workers, the rings agree on about 1 key in 4: both branches ran.
    assert seen_collision and seen_distinct


def test_removing_a_worker_keeps_the_pairs_that_did_not_include_it() -> None:
    dm = plugin()
    prompts = [request(token_ids=range(i * 16, i * 16 + 16)) for i in range(300)]
    before = [set(ids(dm.filter(p, POOL, CycleState()))) for p in prompts]
    smaller = [e for e in POOL if e.worker_id != "w5"]
    after = [set(ids(dm.filter(p, smaller, CycleState()))) for p in prompts]
    unaffected = [i for i, pair in enumerate(before) if "w5" not in pair]
    assert unaffected and all(before[i] == after[i] for i in unaffected)
    assert all("w5" not in pair for pair in after)


def test_with_ring_members_a_missing_candidate_lends_its_keys_and_gets_them_back() -> None:
    dm = plugin()
    members = frozenset(ids(POOL))
    prompts = [
        dataclasses.replace(request(token_ids=range(i * 16, i * 16 + 16)), ring_members=members)
        for i in range(300)
    ]
    before = [set(ids(dm.filter(p, POOL, CycleState()))) for p in prompts]
    rings_before = [ring.members for ring in dm.rings]
    # w5 is down (or excluded by a retry) but still a member: the rings do not change ...
    without_w5 = [e for e in POOL if e.worker_id != "w5"]
    during = [set(ids(dm.filter(p, without_w5, CycleState()))) for p in prompts]
    assert [ring.members for ring in dm.rings] == rings_before
    # ... its pairs take the next worker on the ring, every other pair stays ...
    assert all(len(pair) == 2 and "w5" not in pair for pair in during)
    assert all(b == d for b, d in zip(before, during, strict=True) if "w5" not in b)
    assert any(b != d for b, d in zip(before, during, strict=True))
    # ... and when it is back, every pair is what it was.
    assert [set(ids(dm.filter(p, POOL, CycleState()))) for p in prompts] == before


def test_a_candidate_not_yet_announced_joins_the_rings() -> None:
    dm = plugin()
    announced = frozenset(ids(POOL[:4]))
    prompt = dataclasses.replace(request(), ring_members=announced)
    dm.filter(prompt, POOL[:5], CycleState())
    assert all(ring.members == frozenset(ids(POOL[:5])) for ring in dm.rings)


@pytest.mark.parametrize(("num_candidates", "expected_size"), [(0, 0), (1, 1)])
def test_fewer_than_two_candidates_are_kept_as_they_are(
    num_candidates: int, expected_size: int
) -> None:
    kept = plugin().filter(request(), POOL[:num_candidates], CycleState())
    assert ids(kept) == ids(POOL[:expected_size])


# --- picker -----------------------------------------------------------------------------
# Endpoints have no latency profile: predicted TTFT = 0.1 ms × (queued + uncached tokens).
# The prompt is 64 tokens = 4 blocks of 16.


def cached_on(*worker_ids: str, num_blocks: int = 4) -> KvBlockIndex:
    index = KvBlockIndex()
    for worker_id in worker_ids:
        index.apply_snapshot(worker_id, [request().block_hashes[:num_blocks]], 0)
    return index


def queued(worker_id: str, num_tokens: int) -> Endpoint:
    return endpoint(worker_id, active=ActiveLoad(num_prefill_tokens=num_tokens))


@pytest.mark.parametrize(
    ("a_queued", "b_queued", "slo_ms", "expected", "reason"),
    [
        # a holds all 64 tokens: TTFT 0.1·2000 = 200 ms ≤ 2000/2 → a.
        (2000, 0, None, "a", "dualmap:cache"),
        # a's TTFT 0.1·10000 = 1000 ms = exactly SLO/2: still a (the rule is "exceeds").
        (10_000, 0, None, "a", "dualmap:cache"),
        # a's TTFT 0.1·10010 = 1001 ms > 1000: b's 0.1·64 = 6.4 ms wins.
        (10_010, 0, None, "b", "dualmap:ttft"),
        # The request's own SLO (300 ms) replaces the default: 200 ms ≤ 150? no → b (6.4 ms).
        (2000, 0, 300.0, "b", "dualmap:ttft"),
        # a's TTFT 3000 ms > SLO/2 but b's is worse (0.1·(40000+64) = 4006.4 ms): a.
        (30_000, 40_000, None, "a", "dualmap:ttft"),
    ],
)
def test_longer_cache_hit_wins_unless_its_ttft_exceeds_half_the_slo(
    a_queued: int, b_queued: int, slo_ms: float | None, expected: str, reason: str
) -> None:
    dm = plugin(cached_on("a"))
    prompt = request(ttft_slo_ms=slo_ms)
    chosen, label = dm.pick(
        prompt, scored(queued("a", a_queued), queued("b", b_queued)), CycleState()
    )
    assert (chosen.worker_id, label) == (expected, reason)


@pytest.mark.parametrize(
    ("cached", "a_queued", "b_queued", "expected"),
    [
        ((), 500, 100, "b"),  # nothing cached anywhere: 56.4 vs 16.4 ms
        (("a", "b"), 100, 500, "a"),  # both hold the whole prompt: 10 vs 50 ms
        ((), 100, 100, "a"),  # equal cache and equal TTFT: candidate order
    ],
)
def test_equal_cached_prefixes_fall_back_to_the_lower_ttft(
    cached: tuple[str, ...], a_queued: int, b_queued: int, expected: str
) -> None:
    dm = plugin(cached_on(*cached))
    chosen, label = dm.pick(
        request(), scored(queued("a", a_queued), queued("b", b_queued)), CycleState()
    )
    assert (chosen.worker_id, label) == (expected, "dualmap:tie")


def test_cached_prefixes_compare_in_tokens() -> None:
    # b holds 3 blocks (48 tokens), a 2 (32): b is the cache candidate.
    index = KvBlockIndex()
    index.apply_snapshot("a", [request().block_hashes[:2]], 0)
    index.apply_snapshot("b", [request().block_hashes[:3]], 0)
    chosen, label = plugin(index).pick(
        request(), scored(queued("a", 0), queued("b", 0)), CycleState()
    )
    assert (chosen.worker_id, label) == ("b", "dualmap:cache")


def test_a_single_candidate_is_picked() -> None:
    chosen, label = plugin().pick(request(), scored(queued("a", 9)), CycleState())
    assert (chosen.worker_id, label) == ("a", "dualmap:tie")


# --- through the scheduler --------------------------------------------------------------


def test_one_plugin_filters_and_picks_in_a_profile() -> None:
    registry = PluginRegistry()
    registry.register(dualmap.TYPE_NAME, dualmap.create, dualmap.SUMMARY)
    config = RoutingConfig.model_validate(
        {
            "plugins": [{"type": "dualmap", "parameters": {"numPrefixBlocks": 2}}],
            "profiles": [{"name": "prefill", "plugins": [{"pluginRef": "dualmap"}]}],
        }
    )
    prompt = request()
    pair = plugin(numPrefixBlocks=2)
    expected_pair = ids(pair.filter(prompt, POOL, CycleState()))
    # Cache the prompt on the second of the pair: the picker must prefer it.
    context = PluginContext(kv_index=cached_on(expected_pair[1]))
    scheduler = build_scheduler(config, registry, context)
    decision = scheduler.schedule(prompt, POOL)
    assert decision.endpoint.worker_id == expected_pair[1]
    assert decision.reason == "dualmap:cache" and set(decision.plugin_seconds) == {"dualmap"}
