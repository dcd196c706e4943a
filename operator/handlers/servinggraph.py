"""ServingGraph handlers: check what the graph names, report it, publish router config."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from triskel.common.kube import resource_path
from triskel.common.resources import (
    API_GROUP,
    API_VERSION,
    ROUTING_POLICY,
    SERVING_GRAPH,
    WORKER_POOL,
    ServingGraphSpec,
)
from triskel.operator.conditions import DEGRADED, READY, ConditionUpdate, merge_conditions
from triskel.operator.graph_check import check_graph, count_ready_pools
from triskel.operator.handlers.reporting import report_problem
from triskel.operator.handlers.triggers import every, on_spec_change
from triskel.operator.runtime import OperatorRuntime
from triskel.operator.validation import describe_error

PLURAL = SERVING_GRAPH.plural
_GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"


def register(registry: kopf.OperatorRegistry, runtime: OperatorRuntime) -> None:
    @on_spec_change(PLURAL, registry)
    @every(PLURAL, runtime.options.status_interval_s, "refresh", registry)
    async def servinggraph_reconcile(
        body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, **_: Any
    ) -> None:
        name, namespace = meta["name"], meta["namespace"]
        try:
            spec = ServingGraphSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            message = f"ServingGraph {namespace}/{name}: {describe_error(error)}"
            report_problem(body, meta, status, patch, runtime.now(), "InvalidSpec", message)
            return
        kube = runtime.kube
        pools = {
            pool: await kube.get(resource_path(_GROUP_VERSION, WORKER_POOL.kind, namespace, pool))
            for pool in spec.pools
        }
        policy = None
        if spec.routing_policy is not None:
            policy = await kube.get(
                resource_path(_GROUP_VERSION, ROUTING_POLICY.kind, namespace, spec.routing_policy)
            )
        problems = check_graph(name, namespace, spec, pools, policy)
        num_ready = count_ready_pools(pools)
        patch.status["readyPools"] = num_ready
        patch.status["observedGeneration"] = meta.get("generation")
        if problems:
            message = "; ".join(p.message for p in problems)
            report_problem(body, meta, status, patch, runtime.now(), problems[0].reason, message)
        else:
            is_ready = num_ready == len(spec.pools)
            patch.status["conditions"] = merge_conditions(
                status.get("conditions", []),
                [
                    ConditionUpdate(DEGRADED, False, "AsExpected"),
                    ConditionUpdate(
                        READY,
                        is_ready,
                        "AllPoolsReady" if is_ready else "PoolsNotReady",
                        f"{num_ready}/{len(spec.pools)} pools ready",
                    ),
                ],
                meta.get("generation"),
                runtime.now(),
            )
        await runtime.publish_router_config()

    @kopf.on.delete(
        API_GROUP, API_VERSION, PLURAL, id="unpublish", registry=registry, optional=True
    )
    async def servinggraph_delete(meta: kopf.Meta, **_: Any) -> None:
        # Its pools stay (they are resources of their own); routers stop serving the model.
        await runtime.publish_router_config(without=(meta["namespace"], meta["name"]))
