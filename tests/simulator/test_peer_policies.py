"""The peer policies run with the settings their projects ship, as each file's header cites.

Every value below was read at its source (the file and the version named next to it);
the test reads each policy file as the simulator and the router do (`load_policy`), then
parses each plugin's parameters with the plugin's own model, so a default the file leaves
out is checked too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from triskel.cli.up_config import load_up_config
from triskel.common.profiles import load_profile
from triskel.common.routing_api import DisaggregationMode, RoutingSettings
from triskel.common.shipped_routing import shipped_routing
from triskel.router.scheduling.plugins.dynamo_kv import DynamoKvParameters
from triskel.router.scheduling.plugins.prefix_cache import PrefixCacheParameters
from triskel.router.scheduling.plugins.sglang_cache_aware import SglangCacheAwareParameters
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import LOAD_REPORT_INTERVAL_MS
from triskel.simulator.cluster import ClusterShape
from triskel.simulator.command import load_policy

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "bench" / "policies"

SGLANG = "sglang-router 0.3.2: sgl-project/sglang sgl-router/py_src/sglang_router/router_args.py"
DYNAMO = "ai-dynamo 1.6.1: dynamo/common/configuration/groups/kv_router_args.py"
DYNAMO_DECODE = "ai-dynamo 1.6.1: lib/llm/src/kv_router/prefill_router.rs (decode override)"
GIE = "gateway-api-inference-extension v1.5.0 (llm-d inference scheduler v0.8.0)"
GIE_PREFIX = f"{GIE}: pkg/epp/framework/plugins/requestcontrol/dataproducer/approximateprefix"
GIE_PROFILE = f"{GIE}: config/charts/epplib/templates/_config.yaml default-plugins.yaml"
# llm-d's autoTune sizes the prefix LRU to the engine's KV blocks: 441,808 tokens / 16.
ENGINE_BLOCKS = load_profile("llama-3.1-8b-h100").kv_capacity_tokens // 16


@dataclass(frozen=True, slots=True)
class Shipped:
    policy: str
    """bench/policies/<policy>.yaml"""
    plugin: str
    """The plugin's name in that file."""
    parameter: str
    """The plugin's parameter, camelCase as the file spells it."""
    value: Any
    source: str


SHIPPED = [
    Shipped("sglang", "sglang", "cacheThreshold", 0.3, f"{SGLANG} cache_threshold"),
    Shipped("sglang", "sglang", "balanceAbsThreshold", 64, f"{SGLANG} balance_abs_threshold"),
    Shipped("sglang", "sglang", "balanceRelThreshold", 1.5, f"{SGLANG} balance_rel_threshold"),
    # max_tree_size 2**26 characters at ~4 characters per token.
    Shipped("sglang", "sglang", "maxTreeTokens", 2**26 // 4, f"{SGLANG} max_tree_size"),
    # overlap credit 1.0 × prefill load scale 1.0 = the cost's overlap weight 1.
    Shipped("dynamo", "prefill-router", "overlapWeight", 1.0, f"{DYNAMO} overlap_score_credit"),
    Shipped("dynamo", "prefill-router", "temperature", 0.0, f"{DYNAMO} router_temperature"),
    Shipped("dynamo", "decode-router", "overlapWeight", 0.0, DYNAMO_DECODE),
    Shipped("dynamo", "decode-router", "temperature", 0.0, f"{DYNAMO} router_temperature"),
    Shipped("llm-d", "prefix", "lruCapacityPerWorker", ENGINE_BLOCKS, f"{GIE_PREFIX} autoTune"),
    # No expiry upstream; 10^9 s outlasts any run.
    Shipped("llm-d", "prefix", "ttlSeconds", 1.0e9, f"{GIE_PREFIX} (no TTL)"),
    Shipped("llm-d", "prefix", "maxPrefixBlocks", 256, f"{GIE_PREFIX} maxPrefixBlocksToMatch"),
]

PARAMETER_MODELS: dict[str, type[PluginParameters]] = {
    "sglang-cache-aware": SglangCacheAwareParameters,
    "dynamo-kv-cost": DynamoKvParameters,
    "prefix-cache-scorer": PrefixCacheParameters,
}

# (policy, profile) -> {plugin name: weight}: llm-d's default profile, GIE_PROFILE.
WEIGHTS = {("llm-d", "default"): {"prefix": 3.0, "queue": 2.0, "kv-utilization": 2.0}}

# Every peer disaggregates every request: SGLang's PD mode, Dynamo with conditional
# disaggregation off (DYNAMO --router-conditional-disagg), llm-d's P/D guide
# (always-disagg-pd-decider), DualMap as published.
ALWAYS_DISAGGREGATED = ["sglang", "dynamo", "llm-d", "dualmap", "least-load"]

# What each header must cite (project and version).
HEADERS = {
    "sglang": "sglang-router 0.3.2",
    "dynamo": "ai-dynamo 1.6.1",
    "llm-d": "llm-d inference scheduler v0.8.0",
    "dualmap": "arXiv:2602.06502v1",
    "least-load": "Not a project's shipped setting",
}


def routing_of(policy: str) -> RoutingSettings:
    return load_policy(str(POLICIES / f"{policy}.yaml")).routing


@pytest.mark.parametrize("shipped", SHIPPED, ids=lambda s: f"{s.policy}-{s.plugin}-{s.parameter}")
def test_each_peer_value_is_the_shipped_default(shipped: Shipped) -> None:
    routing = routing_of(shipped.policy)
    plugin = next(p for p in routing.plugins if (p.name or p.type) == shipped.plugin)
    # Written in the file, so a reader sees it next to its citation ...
    assert plugin.parameters[shipped.parameter] == shipped.value, shipped.source
    # ... and what the plugin runs with.
    model = PARAMETER_MODELS[plugin.type]
    parsed = parse_parameters(model, plugin.name or plugin.type, plugin.parameters)
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", shipped.parameter).lower()
    assert getattr(parsed, snake) == shipped.value, shipped.source


@pytest.mark.parametrize(("key", "weights"), WEIGHTS.items(), ids=lambda k: str(k))
def test_profile_weights_are_the_shipped_ones(
    key: tuple[str, str], weights: dict[str, float]
) -> None:
    policy, profile_name = key
    routing = routing_of(policy)
    profile = next(p for p in routing.profiles if p.name == profile_name)
    scored = {ref.plugin_ref: ref.weight for ref in profile.plugins if ref.plugin_ref in weights}
    assert scored == weights, GIE_PROFILE
    assert profile.plugins[-1].plugin_ref == "max-score-picker"


@pytest.mark.parametrize("policy", ALWAYS_DISAGGREGATED)
def test_peers_disaggregate_every_request(policy: str) -> None:
    assert routing_of(policy).disaggregation.mode is DisaggregationMode.ALWAYS


@pytest.mark.parametrize(("policy", "citation"), HEADERS.items())
def test_each_header_cites_project_and_version(policy: str, citation: str) -> None:
    text = (POLICIES / f"{policy}.yaml").read_text()
    header = text[: text.index("routing:")]
    assert citation in header


def test_the_sglang_version_cited_is_the_one_installed_for_peer_tests() -> None:
    script = (ROOT / "scripts" / "install_peer_routers.sh").read_text()
    assert 'SGLANG_ROUTER="sglang-router==0.3.2"' in script


def test_only_dualmap_holds_prefills_as_its_paper_rebalances_them() -> None:
    # DualMap's hotspot migration moves requests the scheduler still holds; none of the
    # shipped routers holds prefills back.
    assert routing_of("dualmap").prefill_hold.max_per_worker == 64
    for policy in ("sglang", "dynamo", "llm-d", "least-load"):
        assert routing_of(policy).prefill_hold.max_per_worker == 0, policy


def test_a_graph_without_a_policy_routes_with_the_one_shipped_default() -> None:
    # The packaged default (what the router gives a ServingGraph naming no RoutingPolicy).
    shipped = load_policy(str(POLICIES / "triskel.yaml")).routing
    assert shipped_routing() == shipped.scheduling()


def test_triskel_up_routes_with_the_one_shipped_default() -> None:
    # One Triskel default: what the suite measures is what `triskel up` runs.
    shipped = load_policy(str(POLICIES / "triskel.yaml")).routing
    up, _ = load_up_config(None)
    fields = ("disaggregation", "plugins", "profiles", "default_profile", "prefill_hold")
    for field in fields:
        assert getattr(up.routing, field) == getattr(shipped, field), field


def test_llm_d_reads_load_as_last_scraped_every_50_ms_as_it_ships() -> None:
    # GIE v1.5.0's EPP scrapes each model server every DefaultRefreshMetricsInterval
    # (50 ms) and its queue and KV scorers read that scrape alone; the simulated
    # cluster's reports lag as much, and Triskel's default counts what it sent since.
    routing = routing_of("llm-d")
    for plugin in routing.plugins:
        if plugin.type in ("queue-scorer", "kv-utilization-scorer"):
            assert plugin.parameters.get("countUnreported", False) is False, GIE
    assert LOAD_REPORT_INTERVAL_MS == 50, f"{GIE} DefaultRefreshMetricsInterval"
    assert ClusterShape(num_unified=1).load_report_interval_ms == LOAD_REPORT_INTERVAL_MS
    shipped = routing_of("triskel")
    counted = {p.name: p.parameters.get("countUnreported") for p in shipped.plugins}
    assert counted["queue"] is True and counted["kv-utilization"] is True
