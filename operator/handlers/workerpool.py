"""WorkerPool handlers: reconcile on create / update / resume, refresh status, drain on delete."""

from __future__ import annotations

from typing import Any, NoReturn

import kopf
from pydantic import ValidationError

from triskel.common.api import WorkerPoolSpec
from triskel.common.kube import resource_path
from triskel.common.resources import API_GROUP, API_VERSION, WORKER_POOL
from triskel.operator.conditions import (
    DEGRADED,
    PROGRESSING,
    READY,
    ConditionUpdate,
    merge_conditions,
)
from triskel.operator.handlers.triggers import every, on_spec_change
from triskel.operator.runtime import OperatorRuntime
from triskel.operator.validation import describe_error

Json = dict[str, Any]
PLURAL = WORKER_POOL.plural


def register(registry: kopf.OperatorRegistry, runtime: OperatorRuntime) -> None:
    @on_spec_change(PLURAL, registry)
    async def workerpool_reconcile(
        body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, **_: Any
    ) -> None:
        spec = _parse(body, meta, status, patch, runtime)
        try:
            outcome = await runtime.pools().reconcile(dict(body), spec)
        except ValueError as error:  # the engine cannot run the spec as written
            _refuse(body, meta, status, patch, runtime, str(error))
        if outcome.drain is not None and outcome.drain.timed_out:
            kopf.warn(
                body,
                reason="DrainTimeout",
                message=f"removed pods {', '.join(outcome.drain.timed_out)} with work still "
                f"in flight after {runtime.options.drain_timeout_s:g} s",
            )
        _write_status(patch, status, meta, outcome.status, runtime)
        if spec.replicas.desired is None:
            # The scale subresource reads spec.replicas.desired: without it `kubectl get
            # --subresource scale`, HPA and KEDA would see 0 replicas. The pool runs `min`.
            patch.spec["replicas"] = {"desired": spec.replicas.min}
        await runtime.publish_router_config()

    @every(PLURAL, runtime.options.status_interval_s, "status", registry)
    async def workerpool_status(
        body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, **_: Any
    ) -> None:
        try:
            spec = WorkerPoolSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            return  # reported by the reconcile; nothing runs to observe
        path = resource_path("apps/v1", "Deployment", meta["namespace"], meta["name"])
        deployment = await runtime.kube.get(path)
        observed = await runtime.pools().observe(dict(body), spec, deployment)
        _write_status(patch, status, meta, observed, runtime)

    @kopf.on.delete(API_GROUP, API_VERSION, PLURAL, id="drain", registry=registry)
    async def workerpool_delete(body: kopf.Body, **_: Any) -> None:
        result = await runtime.pools().remove(dict(body))
        await runtime.publish_router_config()
        if result.timed_out:
            kopf.warn(
                body,
                reason="DrainTimeout",
                message=f"deleted pods {', '.join(result.timed_out)} with work still in flight",
            )


def _parse(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    runtime: OperatorRuntime,
) -> WorkerPoolSpec:
    try:
        return WorkerPoolSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        _refuse(body, meta, status, patch, runtime, describe_error(error))


def _refuse(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    runtime: OperatorRuntime,
    problem: str,
) -> NoReturn:
    """Reports a spec the operator cannot run; changes and deletes nothing."""
    message = f"WorkerPool {meta['namespace']}/{meta['name']}: {problem}"
    kopf.warn(body, reason="InvalidSpec", message=message)
    patch.status["conditions"] = merge_conditions(
        status.get("conditions", []),
        [
            ConditionUpdate(DEGRADED, True, "InvalidSpec", message),
            ConditionUpdate(READY, False, "InvalidSpec", message),
        ],
        meta.get("generation"),
        runtime.now(),
    )
    # Nothing is changed or deleted: fixing the spec triggers the next reconcile.
    raise kopf.PermanentError(message) from None


def _write_status(
    patch: kopf.Patch,
    status: kopf.Status,
    meta: kopf.Meta,
    observed: Json,
    runtime: OperatorRuntime,
) -> None:
    desired = observed["desiredReplicas"]
    ready = observed["readyReplicas"]
    is_ready = ready >= desired and observed["replicas"] == desired
    progress = "Ready" if is_ready else "ScalingUp" if ready < desired else "ScalingDown"
    updates = [
        ConditionUpdate(
            READY,
            is_ready,
            "AllReplicasReady" if is_ready else "NotAllReady",
            f"{ready}/{desired} replicas ready",
        ),
        ConditionUpdate(PROGRESSING, not is_ready, progress, ""),
        ConditionUpdate(DEGRADED, False, "AsExpected", ""),
    ]
    patch.status.update(observed)
    patch.status["observedGeneration"] = meta.get("generation")
    patch.status["conditions"] = merge_conditions(
        status.get("conditions", []), updates, meta.get("generation"), runtime.now()
    )
