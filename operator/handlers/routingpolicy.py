"""RoutingPolicy handlers: judge the policy the way the router will, report, publish.

A policy's semantic decisions may only send to models its namespace's ServingGraphs
serve, so the verdict can change when graphs come and go: a timer judges again
(remembered verdicts make that cheap) and republishes when it did.
"""

from __future__ import annotations

from typing import Any

import kopf

from triskel.common.resources import ROUTING_POLICY
from triskel.operator.conditions import DEGRADED, READY, ConditionUpdate, merge_conditions
from triskel.operator.handlers.reporting import report_problem
from triskel.operator.handlers.triggers import every, on_spec_change
from triskel.operator.policy_check import targets_in
from triskel.operator.router_config_sync import graphs_in
from triskel.operator.runtime import OperatorRuntime

PLURAL = ROUTING_POLICY.plural


def register(registry: kopf.OperatorRegistry, runtime: OperatorRuntime) -> None:
    async def judge_and_report(
        body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch
    ) -> bool:
        """Writes the verdict into `patch`; True when it differs from the stored one."""
        graphs = await graphs_in(runtime.kube, meta["namespace"])
        problem = runtime.judge.problem(dict(body), targets_in(meta["namespace"], graphs))
        patch.status["observedGeneration"] = meta.get("generation")
        was_accepted = _is_accepted(status)
        if problem is None:
            updates = [
                ConditionUpdate(READY, True, "Accepted", "every plugin, signal and rule builds"),
                ConditionUpdate(DEGRADED, False, "AsExpected"),
            ]
            patch.status["conditions"] = merge_conditions(
                status.get("conditions", []), updates, meta.get("generation"), runtime.now()
            )
        else:
            message = f"RoutingPolicy {meta['namespace']}/{meta['name']}: {problem}"
            report_problem(body, meta, status, patch, runtime.now(), "InvalidPolicy", message)
        return was_accepted is not (problem is None)

    @on_spec_change(PLURAL, registry)
    async def routingpolicy_reconcile(
        body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, **_: Any
    ) -> None:
        await judge_and_report(body, meta, status, patch)
        # A refused policy is left out of the router config; routers keep the last good one.
        await runtime.publish_router_config()

    @every(PLURAL, runtime.options.status_interval_s, "status", registry)
    async def routingpolicy_status(
        body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, **_: Any
    ) -> None:
        if await judge_and_report(body, meta, status, patch):
            await runtime.publish_router_config()


def _is_accepted(status: kopf.Status) -> bool | None:
    """The stored verdict: True accepted, False refused, None never judged."""
    for condition in status.get("conditions", []):
        if condition.get("type") == READY:
            return bool(condition.get("status") == "True")
    return None
