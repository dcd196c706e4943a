"""prefix-affinity-filter: keep cache holders unless they are a hot spot."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.common.routing_api import RoutingConfig
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import Filter, PluginContext
from triskel.router.scheduling.plugins import precise_prefix, prefix_affinity
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.registry import PluginConfigError, PluginRegistry
from triskel.router.scheduling.types import CycleState, Endpoint

from support.prefix_scheduling import create_first_best_picker, endpoint, prompt_request

# 16 tokens in blocks of 4 → 4 full blocks. Endpoints have no latency profile, so
# predicted TTFT = 0.1 ms × (queued prefill tokens + uncached prompt tokens).
REQUEST = prompt_request(range(16))
BLOCKS = REQUEST.block_hashes


def context_with(held: dict[str, int]) -> PluginContext:
    index = KvBlockIndex()
    for worker_id, num_blocks in held.items():
        index.apply_stored(worker_id, 1, BLOCKS[:num_blocks])
    return PluginContext(kv_index=index)


def kept(
    held: dict[str, int], candidates: list[Endpoint], parameters: dict[str, Any] | None = None
) -> list[str]:
    plugin = prefix_affinity.create("affinity", parameters or {}, context_with(held))
    return [e.worker_id for e in plugin.filter(REQUEST, candidates, CycleState())]


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"threshold": 0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"maxTtftPenaltyMs": -1}, "maxTtftPenaltyMs"),
        ({"penaltyMs": 10}, "penaltyMs"),
    ],
)
def test_bad_parameters_name_plugin_and_field(parameters: dict[str, Any], field: str) -> None:
    with pytest.raises(PluginConfigError, match=rf"plugin 'affinity'.*parameters\.{field}"):
        prefix_affinity.create("affinity", parameters, PluginContext())


def test_is_a_filter() -> None:
    assert isinstance(prefix_affinity.create("affinity", {}, PluginContext()), Filter)


@pytest.mark.parametrize(
    ("held", "parameters", "expected"),
    [
        # a holds 4/4 ≥ 0.8 and is idle: only a is kept.
        pytest.param({"a": 4}, {}, ["a"], id="holder-kept"),
        # 3/4 = 0.75 < 0.8: nobody is a holder, keep all.
        pytest.param({"a": 3}, {}, ["a", "b", "c"], id="below-threshold"),
        # ... unless the threshold is 0.75 itself (the bound is inclusive).
        pytest.param({"a": 3}, {"threshold": 0.75}, ["a"], id="threshold-inclusive"),
        # Every candidate is a holder: nothing to filter.
        pytest.param({"a": 4, "b": 4, "c": 4}, {}, ["a", "b", "c"], id="all-holders"),
        pytest.param({"a": 4, "c": 4}, {}, ["a", "c"], id="two-holders"),
        pytest.param({}, {}, ["a", "b", "c"], id="no-cache"),
    ],
)
def test_keeps_holders(
    held: dict[str, int], parameters: dict[str, Any], expected: list[str]
) -> None:
    candidates = [endpoint("a"), endpoint("b"), endpoint("c")]
    assert kept(held, candidates, parameters) == expected


@pytest.mark.parametrize(
    ("num_queued_on_holder", "expected"),
    [
        # Holder: 0.1 × (1000 + 0) = 100 ms; other: 0.1 × (0 + 16) = 1.6 ms;
        # 98.4 ms extra ≤ 100 ms tolerated → stay on the holder.
        pytest.param(1000, ["a"], id="within-penalty"),
        # Holder: 110 ms; 108.4 ms extra > 100 ms → hot spot, keep everyone.
        pytest.param(1100, ["a", "b"], id="hot-spot"),
    ],
)
def test_hot_holder_releases_the_filter(num_queued_on_holder: int, expected: list[str]) -> None:
    candidates = [endpoint("a", num_prefill_tokens=num_queued_on_holder), endpoint("b")]
    assert kept({"a": 4}, candidates, {"maxTtftPenaltyMs": 100}) == expected


def test_compares_the_best_of_each_group() -> None:
    # Holders a (busy: 200 ms) and c (idle: 0 ms); others b (100 ms) and d (1.6 ms).
    # Best holder 0 ms vs best other 1.6 ms: no penalty, holders kept.
    candidates = [
        endpoint("a", num_prefill_tokens=2000),
        endpoint("b", num_prefill_tokens=984),
        endpoint("c"),
        endpoint("d"),
    ]
    assert kept({"a": 4, "c": 4}, candidates, {"maxTtftPenaltyMs": 0}) == ["a", "c"]


def test_prompt_without_a_full_block_keeps_all() -> None:
    plugin = prefix_affinity.create("affinity", {}, context_with({"a": 4}))
    short = prompt_request(range(3))
    assert plugin.filter(short, [endpoint("a"), endpoint("b")], CycleState()) == [
        endpoint("a"),
        endpoint("b"),
    ]


def test_one_candidate_is_kept() -> None:
    assert kept({}, [endpoint("a")]) == ["a"]
    assert kept({"a": 4}, [endpoint("a")]) == ["a"]


def test_shares_matches_with_the_precise_scorer() -> None:
    state = CycleState()
    plugin = prefix_affinity.create("affinity", {}, context_with({"a": 4}))
    plugin.filter(REQUEST, [endpoint("a"), endpoint("b")], state)
    assert state.memo(precise_prefix.MATCHES_KEY, dict) == {"a": 4, "b": 0}


def test_through_the_scheduler_with_the_precise_scorer() -> None:
    registry = PluginRegistry()
    for module in (prefix_affinity, precise_prefix):
        registry.register(module.TYPE_NAME, module.create, module.SUMMARY)
    registry.register("first-best-picker", create_first_best_picker, "test picker")
    config = RoutingConfig.model_validate(
        {
            "plugins": [
                {"type": "prefix-affinity-filter", "parameters": {"threshold": 0.5}},
                {"type": "precise-prefix-scorer"},
                {"type": "first-best-picker"},
            ],
            "profiles": [
                {
                    "name": "prefill",
                    "plugins": [
                        {"pluginRef": "prefix-affinity-filter"},
                        {"pluginRef": "precise-prefix-scorer"},
                        {"pluginRef": "first-best-picker"},
                    ],
                }
            ],
        }
    )
    scheduler = build_scheduler(config, registry, context_with({"b": 2, "c": 4}))
    decision = scheduler.schedule(REQUEST, [endpoint("a"), endpoint("b"), endpoint("c")])
    # a (0/4) is filtered out; b scores 0.5, c 1.0.
    assert (decision.endpoint.worker_id, decision.scores) == ("c", {"b": 0.5, "c": 1.0})
    assert set(decision.plugin_seconds) == {
        "prefix-affinity-filter",
        "precise-prefix-scorer",
        "first-best-picker",
    }
