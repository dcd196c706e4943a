"""The router's ConfigMap: what it says, that the router's model reads it back, and
that it depends on content only (an unchanged cluster republishes the same bytes)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import ValidationError

from triskel.common.api import WorkerPoolSpec
from triskel.common.resources import RoutingPolicySpec, ServingGraphSpec
from triskel.common.router_cluster import (
    ROUTER_CONFIG_KEY,
    ROUTER_CONFIG_MAP_NAME,
    GraphRoute,
    RouterClusterConfig,
)
from triskel.operator.builders.router_config import (
    Named,
    build_router_config_map,
    router_cluster_config,
)

from support.pool_objects import pool_spec, validate

DUALMAP = RoutingPolicySpec.model_validate(
    {
        "plugins": [
            {"type": "dualmap", "parameters": {"numPrefixBlocks": 4}},
            {"type": "least-load-scorer", "name": "load"},
            {"type": "max-score-picker"},
        ],
        "profiles": [
            {"name": "prefill", "plugins": [{"pluginRef": "dualmap"}]},
            {
                "name": "decode",
                "plugins": [{"pluginRef": "load", "weight": 1}, {"pluginRef": "max-score-picker"}],
            },
        ],
        "defaultProfile": "decode",
    }
)


def graph(namespace: str, name: str, **fields: Any) -> Named[ServingGraphSpec]:
    return Named(namespace, name, ServingGraphSpec.model_validate({"model": "m", **fields}))


def pool(namespace: str, name: str, **fields: Any) -> Named[WorkerPoolSpec]:
    return Named(namespace, name, pool_spec(**fields))


GRAPHS = [
    graph(
        "prod",
        "chat",
        pools=["prefill", "decode"],
        routingPolicy="dualmap",
        slo={"ttftMs": 800, "tpotMs": 40},
    ),
    graph("prod", "solo", pools=["uni", "ghost", "broken"]),
    graph("dev", "chat", pools=["decode"], routingPolicy="not-there"),
]
POLICIES = [
    Named("prod", "dualmap", DUALMAP),
    Named("prod", "unused", DUALMAP),
]
POOLS = [
    pool("prod", "prefill", role="prefill"),
    pool("prod", "decode", role="decode"),
    pool("prod", "uni", role="unified", engine={"type": "vllm"}, resources={"gpus": 1}),
    # A vLLM pool without GPUs runs nothing: it counts as missing.
    pool("prod", "broken", role="unified", engine={"type": "vllm"}),
    pool("dev", "decode", role="decode"),
]


def data_of(graphs: list[Any], policies: list[Any], pools: list[Any]) -> str:
    config_map = build_router_config_map("triskel", graphs, policies, pools)
    text: str = config_map["data"][ROUTER_CONFIG_KEY]
    return text


def test_config_map_fits_the_kubernetes_schema() -> None:
    config_map = build_router_config_map("triskel", GRAPHS, POLICIES, POOLS)
    validate(config_map)
    assert config_map["metadata"]["name"] == ROUTER_CONFIG_MAP_NAME == "triskel-router-config"
    assert config_map["metadata"]["namespace"] == "triskel"
    # It belongs to the installation, not to one graph.
    assert "ownerReferences" not in config_map["metadata"]


def test_router_model_reads_it_back_byte_for_byte() -> None:
    text = data_of(GRAPHS, POLICIES, POOLS)
    parsed = RouterClusterConfig.from_json(text)
    assert parsed == router_cluster_config(GRAPHS, POLICIES, POOLS)
    assert parsed.to_json() == text


@pytest.mark.parametrize("order", list(itertools.permutations(range(3)))[1:])
def test_input_order_changes_no_byte(order: tuple[int, ...]) -> None:
    reordered_graphs = [GRAPHS[i] for i in order]
    # A graph's own pool list, reversed, is the same graph.
    reordered_graphs = [
        Named(g.namespace, g.name, g.spec.model_copy(update={"pools": g.spec.pools[::-1]}))
        for g in reordered_graphs
    ]
    assert data_of(reordered_graphs, POLICIES[::-1], POOLS[::-1]) == data_of(
        GRAPHS, POLICIES, POOLS
    )


def find(config: RouterClusterConfig, namespace: str, name: str) -> GraphRoute:
    return next(g for g in config.graphs if (g.namespace, g.name) == (namespace, name))


def test_graphs_list_their_pools_with_addresses() -> None:
    config = router_cluster_config(GRAPHS, POLICIES, POOLS)
    chat = find(config, "prod", "chat")
    assert [(p.name, str(p.role), p.service, p.ports) for p in chat.pools] == [
        ("decode", "decode", "decode.prod.svc.cluster.local", {"grpc": 50051, "frames": 50052}),
        ("prefill", "prefill", "prefill.prod.svc.cluster.local", {"grpc": 50051, "frames": 50052}),
    ]
    assert (chat.slo.ttft_ms, chat.slo.tpot_ms) == (800, 40)
    assert config.routing_policy_of(chat) == DUALMAP


def test_absent_or_unrunnable_pools_are_listed_as_missing() -> None:
    solo = find(router_cluster_config(GRAPHS, POLICIES, POOLS), "prod", "solo")
    assert [(p.name, p.ports) for p in solo.pools] == [("uni", {"http": 8000})]
    assert solo.missing_pools == ["broken", "ghost"]


def test_only_named_policies_are_published() -> None:
    config = router_cluster_config(GRAPHS, POLICIES, POOLS)
    # "unused" is named by no graph; dev's "not-there" does not exist.
    assert [(p.namespace, p.name) for p in config.routing_policies] == [("prod", "dualmap")]
    assert config.routing_policy_of(find(config, "dev", "chat")) is None
    # Pools are looked up in the graph's own namespace.
    assert [p.service for p in find(config, "dev", "chat").pools] == [
        "decode.dev.svc.cluster.local"
    ]


def test_a_graph_listed_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="graph listed twice: prod/chat"):
        router_cluster_config([GRAPHS[0], GRAPHS[0]], POLICIES, POOLS)


def test_an_empty_cluster_is_a_valid_document() -> None:
    text = data_of([], [], [])
    assert RouterClusterConfig.from_json(text) == RouterClusterConfig()
