"""What the router reads in a cluster: the served graphs, their pools, their policies.

The operator writes this document into the ConfigMap `triskel-router-config`
(key `router-config.json`) from the ServingGraphs, WorkerPools and RoutingPolicies
it watches; router pods mount it. The router parses it with this model and needs
nothing from the operator.

    graphs:
      - {namespace: prod, name: chat, model: llama-3.1-8b, slo: {...},
         disaggregation: {...}, routingPolicy: dualmap,
         pools: [{name: decode, role: decode, engine: mock,
                  service: decode.prod.svc.cluster.local, ports: {grpc: 50051}}, ...],
         missingPools: []}
    routingPolicies:
      - {namespace: prod, name: dualmap, spec: {plugins: [...], profiles: [...]}}

Every list is kept sorted (by namespace and name), so equal content gives equal
bytes: rewriting the ConfigMap with an unchanged document is a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from pydantic import Field, field_validator

from triskel.common.api import ApiModel, EngineType, Role
from triskel.common.resources import GraphSlo, RoutingPolicySpec
from triskel.common.routing_api import DisaggregationSpec

ROUTER_CONFIG_MAP_NAME = "triskel-router-config"
ROUTER_CONFIG_KEY = "router-config.json"

Name = Annotated[str, Field(min_length=1)]
_T = TypeVar("_T")


class PoolRoute(ApiModel):
    """One WorkerPool of a graph, and how to reach its ready workers."""

    name: Name
    role: Role
    # The model the pool's engine loads.
    model: Name
    engine: EngineType
    # DNS name of the pool's headless Service: resolves to every ready pod's IP.
    service: Name
    # The pods' named ports: "grpc" (triskel.v1.Worker), "frames" (its frames), "http"
    # (OpenAI API), "kv".
    ports: dict[str, Annotated[int, Field(ge=1, le=65535)]]


class GraphRoute(ApiModel):
    """One ServingGraph: the model clients ask for and the pools that serve it."""

    namespace: Name
    name: Name
    model: Name
    slo: GraphSlo
    disaggregation: DisaggregationSpec
    # A RoutingPolicy in the graph's namespace; None: the router's default.
    routing_policy: str | None = None
    # The graph's pools that exist, sorted by name.
    pools: list[PoolRoute] = Field(default_factory=list)
    # Pools the graph names that do not exist (yet): served without them meanwhile.
    missing_pools: list[str] = Field(default_factory=list)

    @field_validator("pools")
    @classmethod
    def _sorted_pools(cls, pools: list[PoolRoute]) -> list[PoolRoute]:
        return _sorted_unique(pools, lambda p: (p.name,), "pool")

    @field_validator("missing_pools")
    @classmethod
    def _sorted_missing(cls, names: list[str]) -> list[str]:
        return sorted(set(names))


class PolicyEntry(ApiModel):
    namespace: Name
    name: Name
    spec: RoutingPolicySpec


class RouterClusterConfig(ApiModel):
    """The whole document; `to_json` gives its one canonical text."""

    format_version: Literal[1] = 1
    graphs: list[GraphRoute] = Field(default_factory=list)
    # Only policies some graph names, and only ones the operator accepted.
    routing_policies: list[PolicyEntry] = Field(default_factory=list)

    @field_validator("graphs")
    @classmethod
    def _sorted_graphs(cls, graphs: list[GraphRoute]) -> list[GraphRoute]:
        return _sorted_unique(graphs, lambda g: (g.namespace, g.name), "graph")

    @field_validator("routing_policies")
    @classmethod
    def _sorted_policies(cls, policies: list[PolicyEntry]) -> list[PolicyEntry]:
        return _sorted_unique(policies, lambda p: (p.namespace, p.name), "routing policy")

    def routing_policy_of(self, graph: GraphRoute) -> RoutingPolicySpec | None:
        """The graph's policy; None when it names none, or one that is not published
        (missing, or refused by the operator)."""
        for entry in self.routing_policies:
            if (entry.namespace, entry.name) == (graph.namespace, graph.routing_policy):
                return entry.spec
        return None

    def to_json(self) -> str:
        """Canonical text: sorted keys and lists, camelCase names, a final newline."""
        data = self.model_dump(mode="json", by_alias=True)
        return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> RouterClusterConfig:
        """Parses the document; pydantic's ValidationError names a bad field."""
        return cls.model_validate_json(text)


def _sorted_unique(items: list[_T], key: Callable[[_T], tuple[str, ...]], what: str) -> list[_T]:
    ordered = sorted(items, key=key)
    keys = [key(item) for item in ordered]
    repeated = sorted({"/".join(k) for i, k in enumerate(keys) if i and keys[i - 1] == k})
    if repeated:
        raise ValueError(f"{what} listed twice: {', '.join(repeated)}")
    return ordered
