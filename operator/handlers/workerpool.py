"""WorkerPool handlers: reconcile on create / update / resume, refresh status, drain on delete."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import kopf
from pydantic import ValidationError

from triskel.common.api import WorkerPoolSpec
from triskel.common.kube import KubeError, resource_path
from triskel.common.resources import API_GROUP, API_VERSION, WORKER_POOL
from triskel.operator.conditions import (
    DEGRADED,
    PROGRESSING,
    READY,
    ConditionUpdate,
    is_true,
    merge_conditions,
)
from triskel.operator.handlers.reporting import report_problem
from triskel.operator.handlers.triggers import every, on_spec_change
from triskel.operator.pool_reconciler import ChildRefused
from triskel.operator.runtime import OperatorRuntime
from triskel.operator.validation import describe_error

_log = logging.getLogger(__name__)

Json = dict[str, Any]
PLURAL = WORKER_POOL.plural


# How soon a pool whose child the API server refused is reconciled again: the cause (a
# quota, an admission policy) may go away without the pool changing. kopf keeps a delayed
# handler asleep through a spec change, so a fixed delay would also hold back the user's
# fix: start at 1 s and double to 30 s, as controllers back off a failing sync.
CHILD_REFUSED_FIRST_RETRY_S = 1.0
CHILD_REFUSED_MAX_RETRY_S = 30.0


def child_refused_retry_s(num_retries: int) -> float:
    """The delay before the next reconcile of a pool refused `num_retries` times in a
    row (kopf's `retry`: 0 after the first refusal)."""
    return min(CHILD_REFUSED_FIRST_RETRY_S * 2.0 ** min(num_retries, 16), CHILD_REFUSED_MAX_RETRY_S)


def register(registry: kopf.OperatorRegistry, runtime: OperatorRuntime) -> None:
    @on_spec_change(PLURAL, registry)
    async def workerpool_reconcile(
        body: kopf.Body,
        meta: kopf.Meta,
        status: kopf.Status,
        patch: kopf.Patch,
        retry: int,
        **_: Any,
    ) -> None:
        spec = _parse(body, meta, status, patch, runtime)
        pools = await runtime.pools()
        try:
            outcome = await pools.reconcile(dict(body), spec)
        except ValueError as error:  # the engine cannot run the spec as written
            _refuse(body, meta, status, patch, runtime, str(error))
        except ChildRefused as refused:
            message = f"WorkerPool {meta['namespace']}/{meta['name']}: {refused}"
            report_problem(body, meta, status, patch, runtime.now(), "ChildRefused", message)
            raise kopf.TemporaryError(message, delay=child_refused_retry_s(retry)) from None
        if outcome.drain is not None and outcome.drain.timed_out:
            kopf.warn(
                body,
                reason="DrainTimeout",
                message=f"removed pods {', '.join(outcome.drain.timed_out)} with work still "
                f"in flight after {runtime.options.drain_timeout_s:g} s",
            )
        # Every child was accepted: whatever was degraded before is mended.
        _write_status(patch, status, meta, outcome.status, runtime, mended=True)
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
        pools = await runtime.pools()
        observed = await pools.observe(dict(body), spec, deployment)
        _write_status(patch, status, meta, observed, runtime, mended=False)
        # A deleted key Secret (a rotation) is back within one interval, so pods started
        # meanwhile do not wait for the pool's next change. A refusal is the reconcile's
        # to report; here it is only logged.
        try:
            await pools.ensure_kv_key(meta["namespace"], spec)
        except ValueError:
            return  # an engine that cannot run the spec: reported by the reconcile
        except (ChildRefused, KubeError) as error:
            _log.warning("WorkerPool %s/%s: %s", meta["namespace"], meta["name"], error)

    @kopf.on.delete(API_GROUP, API_VERSION, PLURAL, id="drain", registry=registry)
    async def workerpool_delete(body: kopf.Body, **_: Any) -> None:
        result = await (await runtime.pools()).remove(dict(body))
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
    report_problem(body, meta, status, patch, runtime.now(), "InvalidSpec", message)
    # Nothing is changed or deleted: fixing the spec triggers the next reconcile.
    raise kopf.PermanentError(message) from None


def _write_status(
    patch: kopf.Patch,
    status: kopf.Status,
    meta: kopf.Meta,
    observed: Json,
    runtime: OperatorRuntime,
    mended: bool,
) -> None:
    """The observed fields, and `Ready` / `Progressing` from them.

    `Degraded` belongs to the reconcile, which alone knows whether the spec could be
    applied: `mended` clears it after a reconcile that applied everything. The status
    timer (`mended=False`) leaves a standing problem and its `Ready=False` in place:
    pods of an older spec may still be ready, but the pool is not what was asked for.
    """
    patch.status.update(observed)
    patch.status["observedGeneration"] = meta.get("generation")
    previous = status.get("conditions", [])
    if not mended and is_true(previous, DEGRADED):
        return
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
    ]
    if mended:
        updates.append(ConditionUpdate(DEGRADED, False, "AsExpected", ""))
    patch.status["conditions"] = merge_conditions(
        previous, updates, meta.get("generation"), runtime.now()
    )
