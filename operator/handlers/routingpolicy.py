"""RoutingPolicy handlers: judge the policy the way the router will, report, publish."""

from __future__ import annotations

from typing import Any

import kopf

from triskel.common.resources import ROUTING_POLICY
from triskel.operator.conditions import DEGRADED, READY, ConditionUpdate, merge_conditions
from triskel.operator.handlers.reporting import report_problem
from triskel.operator.handlers.triggers import on_spec_change
from triskel.operator.policy_check import policy_problem
from triskel.operator.runtime import OperatorRuntime

PLURAL = ROUTING_POLICY.plural


def register(registry: kopf.OperatorRegistry, runtime: OperatorRuntime) -> None:
    @on_spec_change(PLURAL, registry)
    async def routingpolicy_reconcile(
        body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, **_: Any
    ) -> None:
        problem = policy_problem(dict(body))
        patch.status["observedGeneration"] = meta.get("generation")
        if problem is None:
            updates = [
                ConditionUpdate(READY, True, "Accepted", "every plugin and profile builds"),
                ConditionUpdate(DEGRADED, False, "AsExpected"),
            ]
            patch.status["conditions"] = merge_conditions(
                status.get("conditions", []), updates, meta.get("generation"), runtime.now()
            )
        else:
            message = f"RoutingPolicy {meta['namespace']}/{meta['name']}: {problem}"
            report_problem(body, meta, status, patch, runtime.now(), "InvalidPolicy", message)
        # A refused policy is left out of the router config; routers keep the last good one.
        await runtime.publish_router_config()
