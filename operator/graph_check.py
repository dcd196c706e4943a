"""What only the operator can judge about a ServingGraph: do the things it names exist
and fit together? Pure: the handler fetches, this decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from triskel.common.api import Role
from triskel.common.resources import ServingGraphSpec
from triskel.operator.conditions import READY

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class GraphProblem:
    reason: str
    message: str


def check_graph(
    name: str,
    namespace: str,
    spec: ServingGraphSpec,
    pools: Mapping[str, Json | None],
    policy: Json | None,
) -> list[GraphProblem]:
    """Problems with the graph `name`: each pool in `spec.pools` looked up in `pools`
    (None: not found), and its routing policy (None: not found or not named)."""
    problems: list[GraphProblem] = []
    roles: set[str] = set()
    for pool_name in spec.pools:
        pool = pools.get(pool_name)
        if pool is None:
            problems.append(
                GraphProblem(
                    "PoolNotFound",
                    f"ServingGraph {namespace}/{name}: spec.pools names WorkerPool "
                    f"{pool_name!r}, which does not exist in namespace {namespace}",
                )
            )
            continue
        pool_spec = pool.get("spec", {})
        roles.add(pool_spec.get("role", ""))
        if pool_spec.get("model") != spec.model:
            problems.append(
                GraphProblem(
                    "ModelMismatch",
                    f"ServingGraph {namespace}/{name}: WorkerPool {pool_name!r} serves model "
                    f"{pool_spec.get('model')!r}, the graph serves {spec.model!r}",
                )
            )
    found_all = len(roles) > 0 and not any(p.reason == "PoolNotFound" for p in problems)
    if found_all and not roles & {Role.DECODE, Role.UNIFIED}:
        problems.append(
            GraphProblem(
                "NoDecodePool",
                f"ServingGraph {namespace}/{name}: spec.pools has no decode or unified pool, "
                "so nothing can generate tokens",
            )
        )
    if spec.routing_policy is not None and policy is None:
        problems.append(
            GraphProblem(
                "RoutingPolicyNotFound",
                f"ServingGraph {namespace}/{name}: spec.routingPolicy names RoutingPolicy "
                f"{spec.routing_policy!r}, which does not exist in namespace {namespace}",
            )
        )
    return problems


def count_ready_pools(pools: Mapping[str, Json | None]) -> int:
    return sum(
        1
        for pool in pools.values()
        if pool is not None
        and any(
            c.get("type") == READY and c.get("status") == "True"
            for c in pool.get("status", {}).get("conditions", [])
        )
    )
