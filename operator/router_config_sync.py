"""Publishes the router config (ConfigMap `triskel-router-config`) from what is declared.

Run after any ServingGraph or RoutingPolicy change. Objects whose spec does not
parse, and policies the router would refuse, are left out: routers keep serving
what was valid (a refused policy's graph is served by Triskel's shipped default only
if it never had a valid policy, and its Degraded condition says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from triskel.common.api import ApiModel, WorkerPoolSpec
from triskel.common.kube import KubeClient
from triskel.common.resources import (
    API_GROUP,
    API_VERSION,
    ROUTING_POLICY,
    SERVING_GRAPH,
    WORKER_POOL,
    ResourceKind,
    RoutingPolicySpec,
    ServingGraphSpec,
)
from triskel.operator.builders.router_config import Named, build_router_config_map
from triskel.operator.policy_check import PolicyJudge, targets_in

Json = dict[str, Any]
SpecT = TypeVar("SpecT", bound=ApiModel)


async def publish_router_config(
    kube: KubeClient,
    config_namespace: str,
    judge: PolicyJudge,
    watched: Sequence[str] = (),
    without: tuple[str, str] | None = None,
) -> None:
    """Writes the ConfigMap into `config_namespace` (where routers run) from the
    resources in `watched` namespaces (all when empty), leaving out the graph
    `without` = (namespace, name) being deleted."""
    graphs = [
        g
        for g in _parsed(await _list(kube, SERVING_GRAPH, watched), ServingGraphSpec)
        if (g.namespace, g.name) != without
    ]
    policy_bodies = [
        body
        for body in await _list(kube, ROUTING_POLICY, watched)
        if not judge.problem(body, targets_in(body["metadata"]["namespace"], graphs))
    ]
    policies = _parsed(policy_bodies, RoutingPolicySpec)
    pools = _parsed(await _list(kube, WORKER_POOL, watched), WorkerPoolSpec)
    await kube.apply(build_router_config_map(config_namespace, graphs, policies, pools))


async def graphs_in(kube: KubeClient, namespace: str) -> list[Named[ServingGraphSpec]]:
    """The ServingGraphs of one namespace whose spec parses."""
    return _parsed(await _list(kube, SERVING_GRAPH, [namespace]), ServingGraphSpec)


async def _list(kube: KubeClient, kind: ResourceKind, watched: Sequence[str]) -> list[Json]:
    base = f"/apis/{API_GROUP}/{API_VERSION}"
    if not watched:
        return await kube.list(f"{base}/{kind.plural}")
    items: list[Json] = []
    for namespace in watched:
        items += await kube.list(f"{base}/namespaces/{namespace}/{kind.plural}")
    return items


def _parsed(bodies: list[Json], model: type[SpecT]) -> list[Named[SpecT]]:
    named = []
    for body in bodies:
        if body.get("metadata", {}).get("deletionTimestamp"):
            continue
        try:
            spec = model.model_validate(body.get("spec") or {})
        except ValidationError:
            continue  # reported on the object itself
        metadata = body["metadata"]
        named.append(Named(metadata["namespace"], metadata["name"], spec))
    return named
