"""precise-prefix-scorer: parameters and scores from the workers' KV events."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from triskel.common.kv_tiers import KvMedium, host_hit_weight
from triskel.common.profiles import HostLink, LatencyProfile, load_profile
from triskel.common.routing_api import RoutingConfig
from triskel.router.scheduling.candidates import Candidates
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext, Scorer
from triskel.router.scheduling.plugins import precise_prefix
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.registry import PluginConfigError, PluginRegistry
from triskel.router.scheduling.types import CycleState, Endpoint

from support.prefix_scheduling import (
    create_first_best_picker,
    endpoint,
    not_again,
    prompt_request,
)

# 16 tokens in blocks of 4 → 4 full blocks.
REQUEST = prompt_request(range(16))
BLOCKS = REQUEST.block_hashes


def context_with(held: dict[str, int]) -> PluginContext:
    """A context whose index says each worker holds its first `held[worker]` prompt blocks."""
    index = KvBlockIndex()
    for worker_id, num_blocks in held.items():
        index.apply_stored(worker_id, 1, BLOCKS[:num_blocks])
    return PluginContext(kv_index=index)


@pytest.mark.parametrize("parameters", [{"threshold": 1}, {"unknown": True}])
def test_any_parameter_is_refused(parameters: dict[str, Any]) -> None:
    key = next(iter(parameters))
    with pytest.raises(PluginConfigError, match=rf"plugin 'precise'.*parameters\.{key}"):
        precise_prefix.create("precise", parameters, PluginContext())


def test_score_is_matched_over_total_blocks() -> None:
    scorer = precise_prefix.create("precise", {}, context_with({"a": 1, "b": 4}))
    assert isinstance(scorer, Scorer)
    state = CycleState()
    # a holds 1 of 4 blocks, b all 4, c nothing (never sent an event).
    candidates = Candidates([endpoint("a"), endpoint("b"), endpoint("c")])
    assert scorer.score(REQUEST, candidates, state) == [0.25, 1.0, 0.0]
    # The walk stays in the cycle state for the other prefix plugins.
    gpu, host = state.memo_for(precise_prefix.TIER_COLUMNS_KEY, candidates, not_again)
    assert gpu.tolist() == [1, 4, 0] and host.tolist() == [0, 0, 0]


def test_holes_in_the_cache_end_the_match() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, [BLOCKS[0], BLOCKS[2], BLOCKS[3]])
    scorer = precise_prefix.create("precise", {}, PluginContext(kv_index=index))
    # Block 1 is missing, so blocks 2 and 3 cannot be reused: 1 of 4.
    assert scorer.score(REQUEST, [endpoint("a")], CycleState()) == [0.25]


def test_prompt_without_a_full_block_scores_zero() -> None:
    scorer = precise_prefix.create("precise", {}, context_with({"a": 4}))
    assert scorer.score(prompt_request(range(2)), [endpoint("a")], CycleState()) == [0.0]


def test_through_the_scheduler_the_cache_holder_wins() -> None:
    registry = PluginRegistry()
    registry.register(precise_prefix.TYPE_NAME, precise_prefix.create, precise_prefix.SUMMARY)
    registry.register("first-best-picker", create_first_best_picker, "test picker")
    config = RoutingConfig.model_validate(
        {
            "plugins": [{"type": "precise-prefix-scorer"}, {"type": "first-best-picker"}],
            "profiles": [
                {
                    "name": "default",
                    "plugins": [
                        {"pluginRef": "precise-prefix-scorer", "weight": 2},
                        {"pluginRef": "first-best-picker"},
                    ],
                }
            ],
            "defaultProfile": "default",
        }
    )
    scheduler = build_scheduler(config, registry, context_with({"b": 2}))
    decision = scheduler.schedule(REQUEST, [endpoint("a"), endpoint("b")])
    # b holds 2 of 4 blocks: 2 × 0.5 = 1.0.
    assert (decision.endpoint.worker_id, decision.scores) == ("b", {"a": 0.0, "b": 1.0})


# -- the host tier --------------------------------------------------------------

H100 = load_profile("llama-3.1-8b-h100")  # a 50 GB/s host link: w ≈ 0.94
LONG_REQUEST = prompt_request(range(160))  # 40 full blocks of 4
LONG_BLOCKS = LONG_REQUEST.block_hashes


def with_profile(worker_id: str, profile: LatencyProfile | None) -> Endpoint:
    return dataclasses.replace(endpoint(worker_id), profile=profile)


def tiered_context(held: dict[str, tuple[int, int]]) -> PluginContext:
    """Each worker holds its first g prompt blocks in GPU memory, the next h in its host tier."""
    index = KvBlockIndex()
    for worker_id, (g, h) in held.items():
        index.apply_stored(worker_id, 1, LONG_BLOCKS[:g])
        index.apply_stored(worker_id, 2, LONG_BLOCKS[g : g + h], KvMedium.HOST)
    return PluginContext(kv_index=index)


def test_host_hits_count_at_the_profiles_weight() -> None:
    w = host_hit_weight(H100)
    # 131,072 KV bytes per token over 50 GB/s = 0.0026 ms against 0.047 ms to recompute.
    assert w == pytest.approx(0.94, abs=0.005)
    scorer = precise_prefix.create(
        "precise", {}, tiered_context({"a": (10, 20), "b": (20, 0), "c": (0, 40)})
    )
    candidates = [with_profile(w_id, H100) for w_id in ("a", "b", "c")]
    state = CycleState()
    scores = scorer.score(LONG_REQUEST, candidates, state)
    # a: 10 GPU + 20 host blocks = 10 + 0.94 · 20 ≈ 28.8 effective of 40 → ≈ 0.72, above
    # b's 20 GPU blocks (0.5); c's 40 host blocks alone are worth ≈ 37.8 → ≈ 0.94.
    assert scores == pytest.approx([(10 + 20 * w) / 40, 0.5, w])
    assert 0.72 < scores[0] < 0.73
    # Both shares of the one walk are in the cycle state for the other prefix plugins.
    listed = Candidates.of(candidates)
    assert scorer.score(LONG_REQUEST, listed, state) == scores
    index = scorer._kv_index
    assert precise_prefix.matched_tiers(index, LONG_REQUEST, listed, state) == {
        "a": (10, 20),
        "b": (20, 0),
        "c": (0, 40),
    }
    assert precise_prefix.matched_blocks(index, LONG_REQUEST, listed, state) == {
        "a": 10,
        "b": 20,
        "c": 0,
    }


@pytest.mark.parametrize(
    "profile",
    [
        pytest.param(None, id="no-profile"),
        pytest.param(H100.model_copy(update={"host_link": None}), id="no-host-link"),
        # 1 GB/s: 0.131 ms to load a token against 0.047 ms to recompute it.
        pytest.param(
            H100.model_copy(update={"host_link": HostLink(load_gb_per_s=1)}), id="slow-link"
        ),
    ],
)
def test_host_hits_are_worth_nothing_without_a_link_that_beats_recompute(
    profile: LatencyProfile | None,
) -> None:
    assert host_hit_weight(profile) == 0.0
    scorer = precise_prefix.create("precise", {}, tiered_context({"a": (10, 20)}))
    assert scorer.score(LONG_REQUEST, [with_profile("a", profile)], CycleState()) == [0.25]


def test_effective_blocks_are_the_gpu_count_itself_without_host_hits() -> None:
    # Exactly g, an int: scores without host blocks are bit-for-bit what they were.
    a, b = with_profile("a", H100), with_profile("b", None)
    effective = precise_prefix.effective_blocks([(7, 0), (10, 20), (10, 20)], [a, a, b])
    assert effective == pytest.approx([7, 10 + 20 * host_hit_weight(H100), 10])
    assert type(effective[0]) is int


def test_a_filters_walk_serves_the_scorers_after_it_narrowed_the_candidates() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, REQUEST.block_hashes[:1])
    index.apply_stored("b", 1, REQUEST.block_hashes)
    state = CycleState()
    everyone = Candidates([endpoint("a"), endpoint("b"), endpoint("c")])
    # A filter (prefix-affinity) reads the walk over all candidates, then keeps two.
    assert precise_prefix.matched_blocks(index, REQUEST, everyone, state) == {
        "a": 1,
        "b": 4,
        "c": 0,
    }
    index.apply_stored("c", 1, REQUEST.block_hashes)  # not walked again: the cycle's view
    kept = Candidates([endpoint("b"), endpoint("c")])
    scorer = precise_prefix.create("precise", {}, PluginContext(kv_index=index))
    assert scorer.score(REQUEST, kept, state) == [1.0, 0.0]
