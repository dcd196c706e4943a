"""sglang-cache-aware: balance thresholds, radix match ratio, smallest tree, tree updates."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins import sglang_cache_aware
from triskel.router.scheduling.plugins.sglang_cache_aware import (
    SglangCacheAwarePicker,
    create,
    is_imbalanced,
)
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.types import ActiveLoad, CycleState, Endpoint, ScoredEndpoint

from support.scheduling import endpoint, request, scheduler_from


def loaded(worker_id: str, num_requests: int = 0) -> Endpoint:
    return endpoint(worker_id, active=ActiveLoad(num_requests=num_requests))


def picker(seed: int = 0, **parameters: Any) -> SglangCacheAwarePicker:
    return create("sg", parameters, PluginContext(rng=random.Random(seed)))


def pick(
    p: SglangCacheAwarePicker, token_ids: Sequence[int], *endpoints: Endpoint
) -> tuple[str, str]:
    chosen, reason = p.pick(
        request(token_ids=token_ids), [ScoredEndpoint(e, 0.0) for e in endpoints], CycleState()
    )
    return chosen.worker_id, reason


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"cacheThreshold": 1.5}, "parameters.cacheThreshold"),
        ({"balanceAbsThreshold": -1}, "parameters.balanceAbsThreshold"),
        ({"balanceRelThreshold": 0.5}, "parameters.balanceRelThreshold"),
        ({"maxTreeTokens": 0}, "parameters.maxTreeTokens"),
        ({"evictionInterval": 5}, "parameters.evictionInterval"),  # unknown keys are refused
    ],
)
def test_bad_parameters_name_the_plugin_and_field(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PluginConfigError, match=rf"plugin 'sg': {fragment}"):
        picker(**raw)


def test_defaults_are_sglangs_original_ones() -> None:
    parameters = picker().parameters
    assert parameters.cache_threshold == 0.5
    assert (parameters.balance_abs_threshold, parameters.balance_rel_threshold) == (32, 1.0001)


@pytest.mark.parametrize(
    ("loads", "abs_threshold", "rel_threshold", "expected"),
    [
        ([0, 33], 32, 1.0001, True),  # gap 33 > 32 and 33 > 0
        ([0, 32], 32, 1.0001, False),  # gap 32 is not above 32
        ([100, 133], 32, 1.0001, True),  # gap 33, ratio 1.33 > 1.0001
        ([100, 133], 32, 1.5, False),  # ratio 1.33 is not above 1.5
        ([5, 5, 5], 0, 1.0, False),  # equal loads are never imbalanced
    ],
)
def test_imbalance_needs_both_the_gap_and_the_ratio(
    loads: list[int], abs_threshold: int, rel_threshold: float, expected: bool
) -> None:
    assert is_imbalanced(loads, abs_threshold, rel_threshold) is expected


def test_imbalance_picks_the_least_loaded_even_over_a_cache_hit() -> None:
    p = picker()
    prompt = list(range(100))
    p.trees.insert("a", prompt)
    assert pick(p, prompt, loaded("a", 40), loaded("b", 5)) == ("b", "sglang:balance")
    # Ties in load: the first in candidate order, as SGLang scans its worker list.
    assert pick(p, prompt, loaded("a", 40), loaded("b", 2), loaded("c", 2)) == (
        "b",
        "sglang:balance",
    )


@pytest.mark.parametrize(
    ("num_cached", "expected"),
    [
        (60, ("a", "sglang:cache")),  # 60/100 = 0.6 > 0.5
        # Exactly 0.5 is not above the threshold (SGLang compares strictly): smallest tree.
        (50, ("b", "sglang:smallest-tree")),
        (10, ("b", "sglang:smallest-tree")),
    ],
)
def test_a_match_above_the_threshold_wins_else_the_smallest_tree(
    num_cached: int, expected: tuple[str, str]
) -> None:
    p = picker()
    prompt = list(range(100))
    p.trees.insert("a", prompt[:num_cached])
    p.trees.insert("b", [7] * 5)  # smaller than a's tree in every case
    assert pick(p, prompt, loaded("a", 3), loaded("b", 1)) == expected


def test_the_best_ratio_wins_among_several_matches() -> None:
    p = picker()
    prompt = list(range(100))
    p.trees.insert("a", prompt[:70])
    p.trees.insert("b", prompt[:90])
    assert pick(p, prompt, loaded("a"), loaded("b"), loaded("c")) == ("b", "sglang:cache")


def test_ties_in_match_or_tree_size_are_broken_at_random() -> None:
    p = picker(seed=5)
    prompt = list(range(20))
    p.trees.insert("a", prompt)
    p.trees.insert("b", prompt)
    cache_picks = {pick(p, prompt, loaded("a"), loaded("b"))[0] for _ in range(40)}
    empty_picks = {pick(p, [99], loaded("c"), loaded("d"))[0] for _ in range(40)}
    assert cache_picks == {"a", "b"} and empty_picks == {"c", "d"}


def test_an_empty_prompt_goes_to_the_smallest_tree() -> None:
    p = picker()
    p.trees.insert("a", [1, 2])
    assert pick(p, [], loaded("a"), loaded("b")) == ("b", "sglang:smallest-tree")


def test_picks_teach_the_trees_through_the_scheduler() -> None:
    context = PluginContext(rng=random.Random(1))
    scheduler = scheduler_from(
        [sglang_cache_aware],
        {
            "plugins": [{"type": "sglang-cache-aware", "name": "sglang"}],
            "profiles": [{"name": "prefill", "plugins": [{"pluginRef": "sglang"}]}],
        },
        context,
    )
    pool = [loaded("a"), loaded("b")]
    first = scheduler.schedule(request(token_ids=range(64)), pool)
    assert first.reason == "sglang:smallest-tree"
    # The first pick inserted the prompt: the same prompt now hits that worker's tree...
    again = scheduler.schedule(request(token_ids=range(64)), pool)
    assert (again.endpoint, again.reason) == (first.endpoint, "sglang:cache")
    # ...and an unrelated one goes to the other, now smaller, tree.
    other = scheduler.schedule(request(token_ids=range(500, 564)), pool)
    assert other.endpoint != first.endpoint and other.reason == "sglang:smallest-tree"
