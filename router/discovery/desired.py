"""What the router should run, from the operator's router config (pure, no I/O).

RouterClusterConfig ──► wanted workers: address → (model, role, pool, protocol)
                   └──► per model: scheduling profiles (the graph's RoutingPolicy),
                        SLOs and disaggregation (the graph), admission (the policy)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from triskel.common.api import EngineType, Role
from triskel.common.router_cluster import GraphRoute, RouterClusterConfig
from triskel.common.routing_api import RoutingSettings, SloSpec
from triskel.common.shipped_routing import shipped_routing
from triskel.router.backends.addresses import WorkerApi, WorkerEndpoint

PoolKey = tuple[str, str]  # (namespace, pool name)
# Engines whose workers the router drives, and the protocol each speaks.
_API_OF_ENGINE = {EngineType.MOCK: WorkerApi.TRISKEL, EngineType.VLLM: WorkerApi.VLLM}


@dataclass(frozen=True, slots=True)
class WantedWorker:
    address: str
    model: str
    role: Role
    pool: PoolKey
    api: WorkerApi = WorkerApi.TRISKEL

    def endpoint(self) -> WorkerEndpoint:
        """How to reach it: vLLM pods do not report their role, so the pool's is given."""
        if self.api is WorkerApi.VLLM:
            url = f"http://{self.address}"
            return WorkerEndpoint(url=url, api=self.api, role=self.role, model=self.model)
        return WorkerEndpoint(url=self.address, api=self.api)


def pools_to_watch(config: RouterClusterConfig) -> list[PoolKey]:
    """The pools whose endpoints the router needs: every pool it can drive."""
    keys = {
        (graph.namespace, pool.name)
        for graph in config.graphs
        for pool in graph.pools
        if pool.engine in _API_OF_ENGINE
    }
    return sorted(keys)


def wanted_workers(
    config: RouterClusterConfig, endpoints: Mapping[PoolKey, Sequence[str]]
) -> dict[str, WantedWorker]:
    """Every ready worker of every graph's pools, by address.

    Mock pools speak triskel.v1.Worker, vLLM pools their HTTP API. SGLang pools are
    not routed to yet: their P/D needs the bootstrap protocol this router does not speak.
    """
    wanted: dict[str, WantedWorker] = {}
    for graph in config.graphs:
        for pool in graph.pools:
            api = _API_OF_ENGINE.get(pool.engine)
            if api is None:
                continue
            key = (graph.namespace, pool.name)
            for address in endpoints.get(key, ()):
                wanted[address] = WantedWorker(address, pool.model, pool.role, key, api)
    return wanted


def settings_per_model(config: RouterClusterConfig) -> dict[str, RoutingSettings]:
    """Serving settings per client-facing model (a graph's `model`)."""
    return {graph.model: graph_settings(config, graph) for graph in config.graphs}


def graph_settings(config: RouterClusterConfig, graph: GraphRoute) -> RoutingSettings:
    """The graph's routing: its RoutingPolicy's, with Triskel's shipped scheduling
    profile when it has none (no policy named, one not accepted, or one that only sets
    admission, retries or timeouts)."""
    policy = config.routing_policy_of(graph)
    slo = SloSpec(ttft_ms=graph.slo.ttft_ms, tpot_ms=graph.slo.tpot_ms)
    scheduling = policy if policy is not None and policy.profiles else shipped_routing()
    if policy is None:
        return RoutingSettings(
            plugins=scheduling.plugins,
            profiles=scheduling.profiles,
            default_profile=scheduling.default_profile,
            slo=slo,
            disaggregation=graph.disaggregation,
        )
    return RoutingSettings(
        plugins=scheduling.plugins,
        profiles=scheduling.profiles,
        default_profile=scheduling.default_profile,
        admission=policy.admission,
        max_attempts=policy.max_attempts,
        migration_limit=policy.migration_limit,
        timeouts=policy.timeouts,
        prefill_hold=policy.prefill_hold,
        slo=slo,
        disaggregation=graph.disaggregation,
    )
