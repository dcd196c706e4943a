"""dynamo-kv-cost: Dynamo's KV router cost, its tie-breaks and softmax sampling."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest

from triskel.common.kv_tiers import KvMedium, host_hit_weight
from triskel.common.profiles import LatencyProfile, load_profile
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins import dynamo_kv
from triskel.router.scheduling.plugins.dynamo_kv import (
    DynamoKvPicker,
    create,
    kv_costs,
    softmax_weights,
)
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.types import ActiveLoad, CycleState, Endpoint, ScoredEndpoint

from support.scheduling import endpoint, request, scheduler_from

# The prompt is 64 tokens = 4 blocks of 16.
PROMPT = request()


def worker(worker_id: str, *, prefill_tokens: int = 0, decode_blocks: int = 0) -> Endpoint:
    active = ActiveLoad(num_prefill_tokens=prefill_tokens, num_decode_blocks=decode_blocks)
    return endpoint(worker_id, active=active)


def index_with(**num_prompt_blocks: int) -> KvBlockIndex:
    """Worker → how many leading prompt blocks it holds."""
    index = KvBlockIndex()
    for worker_id, n in num_prompt_blocks.items():
        index.apply_snapshot(worker_id, [PROMPT.block_hashes[:n]], 0)
    return index


def picker(index: KvBlockIndex | None = None, seed: int = 0, **parameters: Any) -> DynamoKvPicker:
    context = PluginContext(
        kv_index=index if index is not None else KvBlockIndex(), rng=random.Random(seed)
    )
    return create("dyn", parameters, context)


def pick(p: DynamoKvPicker, *endpoints: Endpoint) -> str:
    chosen, reason = p.pick(PROMPT, [ScoredEndpoint(e, 0.0) for e in endpoints], CycleState())
    assert reason == "dynamo-kv"
    return chosen.worker_id


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"overlapWeight": -1}, "parameters.overlapWeight"),
        ({"temperature": -0.5}, "parameters.temperature"),
        ({"weight": 1}, "parameters.weight"),  # unknown keys are refused
    ],
)
def test_bad_parameters_name_the_plugin_and_field(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PluginConfigError, match=rf"plugin 'dyn': {fragment}"):
        picker(**raw)


def test_defaults_are_dynamos() -> None:
    parameters = picker().parameters
    assert (parameters.overlap_weight, parameters.temperature) == (1.0, 0.0)


def test_cost_adds_weighted_prefill_blocks_and_decode_blocks() -> None:
    endpoints = [
        worker("a", prefill_tokens=32, decode_blocks=10),
        worker("b", decode_blocks=3),
        worker("c", prefill_tokens=8),
    ]
    # a: all 4 blocks cached → (0 + 32)/16 = 2 prefill blocks, + 10 decode = 12.
    # b: nothing cached → 64/16 = 4, + 3 = 7.  c: 1 block cached → (48 + 8)/16 = 3.5.
    assert kv_costs(PROMPT, endpoints, [4, 0, 1], 1.0) == [12.0, 7.0, 3.5]
    # overlapWeight 2 doubles only the prefill part: 14, 11, 7.
    assert kv_costs(PROMPT, endpoints, [4, 0, 1], 2.0) == [14.0, 11.0, 7.0]


@pytest.mark.parametrize(
    ("overlap_weight", "expected"),
    [
        # a (cached, 5 decode blocks): 5. b (cold, idle): 4·w. w = 1 → b (4 < 5).
        (1.0, "b"),
        # w = 2 → b costs 8: the cache hit on a wins.
        (2.0, "a"),
        # w = 0 is pure load balance on decode blocks: b (0 < 5).
        (0.0, "b"),
    ],
)
def test_the_lowest_cost_wins(overlap_weight: float, expected: str) -> None:
    p = picker(index_with(a=4), overlapWeight=overlap_weight)
    assert pick(p, worker("a", decode_blocks=5), worker("b")) == expected


def test_ties_go_to_the_worker_with_fewer_indexed_blocks() -> None:
    index = index_with()
    # a holds 3 blocks of another prompt (no overlap here), b holds 1: both cost 4.
    other = request(token_ids=range(500, 564)).block_hashes
    index.apply_snapshot("a", [other[:3]], 0)
    index.apply_snapshot("b", [other[:1]], 0)
    assert {pick(picker(index, seed=s), worker("a"), worker("b")) for s in range(20)} == {"b"}


def test_full_ties_are_broken_at_random() -> None:
    p = picker(seed=3)
    counts = Counter(pick(p, worker("a"), worker("b"), worker("c")) for _ in range(300))
    # Uniform over three: each about 100 of 300.
    assert set(counts) == {"a", "b", "c"} and min(counts.values()) > 60


@pytest.mark.parametrize(
    ("costs", "temperature", "expected"),
    [
        ([2.0, 12.0], 1.0, [1.0, math.exp(-1.0)]),  # the worst gets e^(−1/T)
        ([2.0, 7.0, 12.0], 0.5, [1.0, math.exp(-1.0), math.exp(-2.0)]),
        ([5.0, 5.0], 1.0, [1.0, 1.0]),  # all equal: uniform
    ],
)
def test_softmax_weights(costs: list[float], temperature: float, expected: list[float]) -> None:
    assert softmax_weights(costs, temperature) == pytest.approx(expected)


def test_temperature_samples_by_the_softmax_weights() -> None:
    # a costs 4 − 4 = 0 (+0), b costs 4: weights 1 and e⁻¹ → a with p = 1/(1 + e⁻¹) ≈ 0.731.
    p = picker(index_with(a=4), seed=11, temperature=1.0)
    counts = Counter(pick(p, worker("a"), worker("b")) for _ in range(2000))
    assert 0.68 < counts["a"] / 2000 < 0.78


def test_runs_in_a_profile() -> None:
    scheduler = scheduler_from(
        [dynamo_kv],
        {
            "plugins": [{"type": "dynamo-kv-cost", "name": "dynamo"}],
            "profiles": [{"name": "prefill", "plugins": [{"pluginRef": "dynamo"}]}],
        },
        PluginContext(kv_index=index_with(b=4)),
    )
    decision = scheduler.schedule(PROMPT, [worker("a"), worker("b"), worker("c")])
    # b holds the whole prompt: cost 0 against 4 for the others.
    assert (decision.endpoint.worker_id, decision.reason) == ("b", "dynamo-kv")
    assert set(decision.plugin_seconds) == {"dynamo"}


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        # w ≈ 0.94: a's overlap is 1 + 3w ≈ 3.83 blocks, cost 4 − 3.83 ≈ 0.17 < b's 1.
        pytest.param(load_profile("llama-3.1-8b-h100"), "a", id="host-link"),
        # w = 0 (no profile, so no host link): a's overlap is 1 block, cost 3 > b's 1.
        pytest.param(None, "b", id="no-profile"),
    ],
)
def test_host_tier_blocks_count_at_the_host_hit_weight(
    profile: LatencyProfile | None, expected: str
) -> None:
    index = index_with(a=1, b=4)
    index.apply_stored("a", 1, PROMPT.block_hashes[1:], KvMedium.HOST)
    a = endpoint("a", profile=profile)
    b = endpoint("b", profile=profile, active=ActiveLoad(num_decode_blocks=1))
    assert pick(picker(index), a, b) == expected
    w = host_hit_weight(profile)
    assert kv_costs(PROMPT, [a, b], [1 + 3 * w, 4], 1.0) == pytest.approx([3 - 3 * w, 1.0])
