"""The router's ConfigMap: every ServingGraph with its pools and routing policy.

    ServingGraphs ─┐
    WorkerPools  ──┼──► RouterClusterConfig ──► ConfigMap triskel-router-config
    RoutingPolicies┘    (triskel.common.router_cluster)   data: router-config.json

The caller parses the custom resources (leaving out any it refused) and passes
them as `Named` specs; the result depends only on their content, never on the
order they come in, so re-publishing an unchanged cluster changes no byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from triskel.common.api import WorkerPoolSpec
from triskel.common.resources import RoutingPolicySpec, ServingGraphSpec
from triskel.common.router_cluster import (
    ROUTER_CONFIG_KEY,
    ROUTER_CONFIG_MAP_NAME,
    GraphRoute,
    PolicyEntry,
    PoolRoute,
    RouterClusterConfig,
)
from triskel.operator.builders.engines import engine_ports
from triskel.operator.builders.labels import (
    APP_NAME,
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
)
from triskel.operator.builders.service import service_dns_name

Json = dict[str, Any]
SpecT = TypeVar("SpecT")


@dataclass(frozen=True, slots=True)
class Named(Generic[SpecT]):
    """A custom resource's namespace, name and parsed spec."""

    namespace: str
    name: str
    spec: SpecT


def router_cluster_config(
    graphs: Iterable[Named[ServingGraphSpec]],
    policies: Iterable[Named[RoutingPolicySpec]],
    pools: Iterable[Named[WorkerPoolSpec]],
    cluster_domain: str = "cluster.local",
) -> RouterClusterConfig:
    """The document routers read. A graph's pools and policy are looked up in its own
    namespace; a pool that does not exist, or whose engine cannot run its spec, is
    listed under `missingPools`. Included policies: those some graph names, and every
    policy with a `semantic` section (its alias is served whether or not a graph names it)."""
    pools_by_key = {(p.namespace, p.name): p.spec for p in pools}
    policies_by_key = {(p.namespace, p.name): p.spec for p in policies}
    routes: list[GraphRoute] = []
    used_policies: dict[tuple[str, str], RoutingPolicySpec] = {}
    for graph in graphs:
        found, missing = [], []
        for pool_name in graph.spec.pools:
            pool = _pool_route(graph.namespace, pool_name, pools_by_key, cluster_domain)
            if pool is None:
                missing.append(pool_name)
            else:
                found.append(pool)
        policy_key = (graph.namespace, graph.spec.routing_policy or "")
        if policy_key in policies_by_key:
            used_policies[policy_key] = policies_by_key[policy_key]
        routes.append(
            GraphRoute(
                namespace=graph.namespace,
                name=graph.name,
                model=graph.spec.model,
                slo=graph.spec.slo,
                disaggregation=graph.spec.disaggregation,
                routing_policy=graph.spec.routing_policy,
                pools=found,
                missing_pools=missing,
            )
        )
    for (namespace, name), spec in policies_by_key.items():
        if spec.semantic is not None:
            used_policies[(namespace, name)] = spec
    return RouterClusterConfig(
        graphs=routes,
        routing_policies=[
            PolicyEntry(namespace=namespace, name=name, spec=spec)
            for (namespace, name), spec in used_policies.items()
        ],
    )


def build_router_config_map(
    namespace: str,
    graphs: Iterable[Named[ServingGraphSpec]],
    policies: Iterable[Named[RoutingPolicySpec]],
    pools: Iterable[Named[WorkerPoolSpec]],
    *,
    name: str = ROUTER_CONFIG_MAP_NAME,
    cluster_domain: str = "cluster.local",
) -> Json:
    """The ConfigMap `name` in `namespace` holding `router_cluster_config(...)` as JSON.

    It has no owner: it belongs to the router's installation, not to one resource.
    """
    config = router_cluster_config(graphs, policies, pools, cluster_domain)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                NAME_LABEL: APP_NAME,
                COMPONENT_LABEL: "router",
                MANAGED_BY_LABEL: MANAGED_BY,
            },
        },
        "data": {ROUTER_CONFIG_KEY: config.to_json()},
    }


def _pool_route(
    namespace: str,
    pool_name: str,
    pools: dict[tuple[str, str], WorkerPoolSpec],
    cluster_domain: str,
) -> PoolRoute | None:
    spec = pools.get((namespace, pool_name))
    if spec is None:
        return None
    try:
        ports = engine_ports(spec)
    except ValueError:
        return None  # the pool's own status says why it runs nothing
    return PoolRoute(
        name=pool_name,
        role=spec.role,
        model=spec.model,
        engine=spec.engine.type,
        service=service_dns_name(pool_name, namespace, cluster_domain),
        ports={port.name: port.port for port in ports},
    )
