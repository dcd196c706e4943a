"""What the router should run, from the operator's router config (pure, no I/O).

RouterClusterConfig ──► wanted workers: address → (model, role, pool)
                   └──► per model: scheduling profiles (the graph's RoutingPolicy),
                        SLOs and disaggregation (the graph), admission (the policy)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from triskel.common.api import EngineType, Role
from triskel.common.router_cluster import GraphRoute, RouterClusterConfig
from triskel.common.routing_api import RoutingSettings, SloSpec

PoolKey = tuple[str, str]  # (namespace, pool name)


@dataclass(frozen=True, slots=True)
class WantedWorker:
    address: str
    model: str
    role: Role
    pool: PoolKey


def pools_to_watch(config: RouterClusterConfig) -> list[PoolKey]:
    """The pools whose endpoints the router needs: every pool it can drive."""
    keys = {
        (graph.namespace, pool.name)
        for graph in config.graphs
        for pool in graph.pools
        if pool.engine is EngineType.MOCK
    }
    return sorted(keys)


def wanted_workers(
    config: RouterClusterConfig, endpoints: Mapping[PoolKey, Sequence[str]]
) -> dict[str, WantedWorker]:
    """Every ready worker of every graph's pools, by gRPC address.

    Pools of other engines (vLLM, SGLang) speak HTTP, not triskel.v1.Worker: the
    router's vLLM backend will drive them; until then they are not routed to.
    """
    wanted: dict[str, WantedWorker] = {}
    for graph in config.graphs:
        for pool in graph.pools:
            if pool.engine is not EngineType.MOCK:
                continue
            key = (graph.namespace, pool.name)
            for address in endpoints.get(key, ()):
                wanted[address] = WantedWorker(address, pool.model, pool.role, key)
    return wanted


def settings_per_model(config: RouterClusterConfig) -> dict[str, RoutingSettings]:
    """Serving settings per client-facing model (a graph's `model`)."""
    return {graph.model: graph_settings(config, graph) for graph in config.graphs}


def graph_settings(config: RouterClusterConfig, graph: GraphRoute) -> RoutingSettings:
    policy = config.routing_policy_of(graph)
    slo = SloSpec(ttft_ms=graph.slo.ttft_ms, tpot_ms=graph.slo.tpot_ms)
    if policy is None:  # no policy named, or not accepted: round-robin
        return RoutingSettings(slo=slo, disaggregation=graph.disaggregation)
    return RoutingSettings(
        plugins=policy.plugins,
        profiles=policy.profiles,
        default_profile=policy.default_profile,
        admission=policy.admission,
        max_attempts=policy.max_attempts,
        slo=slo,
        disaggregation=graph.disaggregation,
    )
