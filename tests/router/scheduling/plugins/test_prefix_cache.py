"""prefix-cache-scorer: parameters, scores from its own routing history, learning from picks."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from triskel.common.routing_api import RoutingConfig
from triskel.router.scheduling.candidates import Candidates
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PickObserver, PluginContext, Scorer
from triskel.router.scheduling.plugins import prefix_cache
from triskel.router.scheduling.registry import PluginConfigError, PluginRegistry
from triskel.router.scheduling.types import CycleState

from support.prefix_scheduling import (
    create_first_best_picker,
    endpoint,
    not_again,
    prompt_request,
)


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


# 16 tokens in blocks of 4 → 4 full blocks (the 17th token makes no block).
REQUEST = prompt_request(range(17))


def build(parameters: dict[str, Any] | None = None) -> prefix_cache.PrefixCacheScorer:
    return prefix_cache.create("prefix", parameters or {}, PluginContext(clock=FakeClock()))


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"lruCapacityPerWorker": 0}, "lruCapacityPerWorker"),
        ({"ttlSeconds": 0}, "ttlSeconds"),
        ({"ttlSeconds": "soon"}, "ttlSeconds"),
        ({"lruCapacity": 10}, "lruCapacity"),  # unknown keys are refused, not ignored
    ],
)
def test_bad_parameters_name_plugin_and_field(parameters: dict[str, Any], field: str) -> None:
    with pytest.raises(PluginConfigError, match=rf"plugin 'prefix'.*parameters\.{field}"):
        build(parameters)


def test_is_a_scorer_reading_the_routing_history() -> None:
    context = PluginContext(clock=FakeClock())
    scorer = prefix_cache.create("prefix", {"lruCapacityPerWorker": 8, "ttlSeconds": 30}, context)
    assert isinstance(scorer, Scorer)
    # The scheduler writes the history (`Scheduler.sent`), not the plugin.
    assert not isinstance(scorer, PickObserver)
    assert scorer.index is context.history.index(8, 30.0)
    assert scorer.name == "prefix"


def test_score_is_matched_over_total_blocks_and_shared_in_cycle_state() -> None:
    scorer = build()
    blocks = REQUEST.block_hashes
    scorer.index.record("a", blocks[:3])
    scorer.index.record("c", blocks)
    state = CycleState()
    candidates = Candidates([endpoint("a"), endpoint("b"), endpoint("c")])
    # a: 3 of 4 blocks; b: none recorded; c: all 4.
    assert scorer.score(REQUEST, candidates, state) == [0.75, 0.0, 1.0]
    matches = state.memo_for(prefix_cache.MATCHES_KEY, candidates, not_again)
    assert matches.tolist() == [3, 0, 4]


def test_prompt_without_a_full_block_scores_zero() -> None:
    scorer = build()
    short = prompt_request(range(3))  # 3 tokens < one block of 4
    scorer.index.record("a", short.block_hashes)
    assert scorer.score(short, [endpoint("a")], CycleState()) == [0.0]


def test_a_recorded_prompt_scores_its_longer_follow_up() -> None:
    scorer = build()
    scorer.index.record("b", REQUEST.block_hashes)
    # A longer prompt sharing the first 4 blocks: b holds 4 of its 5.
    longer = prompt_request(range(20))
    assert scorer.score(longer, [endpoint("a"), endpoint("b")], CycleState()) == [0.0, 0.8]


def test_history_expires_after_ttl_on_the_context_clock() -> None:
    clock = FakeClock()
    scorer = prefix_cache.create("prefix", {"ttlSeconds": 5}, PluginContext(clock=clock))
    scorer.index.record("a", REQUEST.block_hashes)
    clock.now_s = 4.9
    assert scorer.score(REQUEST, [endpoint("a")], CycleState()) == [1.0]
    clock.now_s = 5.0
    assert scorer.score(REQUEST, [endpoint("a")], CycleState()) == [0.0]


def test_through_the_scheduler_a_repeated_prefix_returns_to_the_same_worker() -> None:
    registry = PluginRegistry()
    registry.register(prefix_cache.TYPE_NAME, prefix_cache.create, prefix_cache.SUMMARY)
    registry.register("first-best-picker", create_first_best_picker, "test picker")
    config = RoutingConfig.model_validate(
        {
            "plugins": [
                {"type": "prefix-cache-scorer", "name": "prefix"},
                {"type": "first-best-picker"},
            ],
            "profiles": [
                {
                    "name": "prefill",
                    "plugins": [
                        {"pluginRef": "prefix", "weight": 3},
                        {"pluginRef": "first-best-picker"},
                    ],
                }
            ],
        }
    )
    scheduler = build_scheduler(config, registry, PluginContext(clock=FakeClock()))
    first = scheduler.schedule(REQUEST, [endpoint("a"), endpoint("b")])
    # Nothing recorded yet: a tie, the picker takes the first candidate.
    assert (first.endpoint.worker_id, first.scores) == ("a", {"a": 0.0, "b": 0.0})
    second = scheduler.schedule(REQUEST, [endpoint("b"), endpoint("a")])
    # The first pick was recorded for a: weight 3 × full match.
    assert (second.endpoint.worker_id, second.scores) == ("a", {"b": 0.0, "a": 3.0})


def test_max_prefix_blocks_scores_and_records_only_the_first_blocks() -> None:
    # llm-d hashes at most the prompt's first 256 blocks: matched ÷ those blocks.
    context = PluginContext(clock=FakeClock())
    scorer = prefix_cache.create("prefix", {"maxPrefixBlocks": 2}, context)
    context.history.record("a", REQUEST.block_hashes)  # 4 blocks sent; 2 recorded
    assert scorer.index.match_lengths(REQUEST.block_hashes, ["a"]) == [2]
    assert scorer.score(REQUEST, [endpoint("a"), endpoint("b")], CycleState()) == [1.0, 0.0]
    # Another replica's longer match counts up to the cap, not past it.
    shared = dataclasses.replace(REQUEST, shared_prefix_matches={"b": 4})
    assert scorer.score(shared, [endpoint("a"), endpoint("b")], CycleState()) == [1.0, 1.0]
    # The uncapped reader of the same bounds is another index, written in full.
    whole = context.history.index()
    assert whole is not scorer.index
    context.history.record("a", REQUEST.block_hashes)
    assert whole.match_lengths(REQUEST.block_hashes, ["a"]) == [4]
