"""precise-prefix-scorer: parameters and scores from the workers' KV events."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.common.routing_api import RoutingConfig
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext, Scorer
from triskel.router.scheduling.plugins import precise_prefix
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.registry import PluginConfigError, PluginRegistry
from triskel.router.scheduling.types import CycleState

from support.prefix_scheduling import create_first_best_picker, endpoint, prompt_request

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
    assert scorer.score(REQUEST, [endpoint("a"), endpoint("b"), endpoint("c")], state) == [
        0.25,
        1.0,
        0.0,
    ]
    assert state.memo(precise_prefix.MATCHES_KEY, dict) == {"a": 1, "b": 4, "c": 0}


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
