"""Elastic EP steps in the background: one task per pool, so a step of tens of seconds
does not hold up the graph's autoscaling loop.

    EpSteps.start(pool, run_step(...))   while it runs, `is_running(pool)` skips the pool
    run_step: the pool's ready pods ──► POST /scale_elastic_ep on each, together
        any answered 200 ──► status.elasticEp (size, lastStep, podsAtSize, lagging)
                             and a Normal `EpScaled`
        any failed ──► a Warning `EpScaleFailed` per pod; all failed: status unchanged
    run_convergence: each ready pod's size (GET /metrics) ──► POST /scale_elastic_ep
        to the pods at another size ──► a Normal `EpConverged`, Warnings per failure,
        status.elasticEp (podsAtSize, lagging, sizeUnknown) when it changed

Owned by the graph's `GraphAutoscaling`: steps live as long as its autoscaler does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import kopf

from triskel.common.api import WorkerPoolSpec
from triskel.common.kube import KubeClient, KubeError, path_of, resource_path
from triskel.operator.elastic_ep import (
    EpStepResult,
    current_ep_size,
    failed_message,
    scaled_message,
    status_patch,
    step_result,
)
from triskel.operator.elastic_ep_client import EpCallFailed, read_ep_size, scale_elastic_ep
from triskel.operator.elastic_ep_convergence import (
    converged_message,
    convergence_plan,
    convergence_status,
    unknown_message,
)
from triskel.operator.pods import HTTP_PORT_NAME, is_draining, is_ready, pods_of_pool

Json = dict[str, Any]
_log = logging.getLogger(__name__)


class EpSteps:
    """The EP steps running for one graph's pools, at most one per pool."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def is_running(self, pool: str) -> bool:
        return pool in self._tasks

    def start(self, pool: str, step: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(step, name=f"elastic-ep {pool}")
        self._tasks[pool] = task
        task.add_done_callback(lambda _: self._tasks.pop(pool, None))

    def cancel_all(self) -> None:
        """The workers finish a step they began (it outlives the call); only its
        record is lost."""
        for task in self._tasks.values():
            task.cancel()


@dataclass(frozen=True, slots=True)
class EpStepOrder:
    """What one step is: the pool (its live body), the graph asking, the sizes."""

    graph: str  # namespace/name, for the event
    pool_body: Json
    from_size: int
    to_size: int


async def run_step(
    kube: KubeClient,
    http: aiohttp.ClientSession,
    order: EpStepOrder,
    clock: Callable[[], float],
    now: Callable[[], str],
) -> None:
    """Asks every ready pod of the pool for the new size and records how it went."""
    pool = kopf.Body(cast(kopf.RawBody, order.pool_body))
    metadata = order.pool_body["metadata"]
    name = f"{metadata['namespace']}/{metadata['name']}"
    try:
        pods = await _serving_pods(kube, order.pool_body)
    except KubeError as error:
        _log.warning("WorkerPool %s: elastic EP: cannot list pods: %s", name, error)
        return
    if not pods:
        _log.warning("WorkerPool %s: elastic EP: no ready pod serves an `http` port", name)
        return
    started = clock()
    outcomes = await _step_pods(http, pods, order.to_size)
    seconds = clock() - started
    answers = {pod: out for pod, out in outcomes.items() if not isinstance(out, EpCallFailed)}
    lagging = [pod for pod in outcomes if pod not in answers]
    for pod in lagging:
        why = cast(EpCallFailed, outcomes[pod]).why
        message = failed_message(name, pod, order.from_size, order.to_size, why)
        kopf.event(pool, type="Warning", reason="EpScaleFailed", message=message)
    if not answers:
        return
    answer = next(iter(answers.values()))
    result: EpStepResult = step_result(answer, order.from_size, order.to_size, seconds)
    patch = status_patch(result, now(), list(answers), lagging)
    await kube.merge_patch(path_of(order.pool_body) + "/status", {"status": patch})
    message = scaled_message(order.graph, result, lagging)
    kopf.event(pool, type="Normal", reason="EpScaled", message=message)


async def run_convergence(
    kube: KubeClient,
    http: aiohttp.ClientSession,
    graph: str,
    pool_body: Json,
    spec: WorkerPoolSpec,
) -> None:
    """Steps every ready pod serving at another EP size than the pool's to it, and
    records which pods do. The pool is read again first: a step that ended since
    the autoscaler read it moved its size, and converging to the old one would undo
    it."""
    metadata = pool_body["metadata"]
    name = f"{metadata['namespace']}/{metadata['name']}"
    try:
        body = await kube.get(path_of(pool_body))
        pods = await _serving_pods(kube, pool_body) if body is not None else {}
    except KubeError as error:
        _log.warning("WorkerPool %s: elastic EP: cannot read the pool: %s", name, error)
        return
    if body is None or not pods:
        return
    status = body.get("status") or {}
    current: Json = status.get("elasticEp") or {}
    pool_size = current_ep_size(spec, status)
    reads = await asyncio.gather(*(_read(http, base_url) for base_url in pods.values()))
    sizes = dict(zip(pods, reads, strict=True))
    unread = {pod: read.why for pod, read in sizes.items() if isinstance(read, EpCallFailed)}
    known = {pod: None if pod in unread else cast(int, read) for pod, read in sizes.items()}
    plan = convergence_plan(known, pool_size, current.get("lagging") or ())
    outcomes = await _step_pods(
        http, {step.pod: pods[step.pod] for step in plan.to_step}, pool_size
    )
    pool = kopf.Body(cast(kopf.RawBody, body))
    stepped = [step for step in plan.to_step if not isinstance(outcomes[step.pod], EpCallFailed)]
    failed = [step for step in plan.to_step if isinstance(outcomes[step.pod], EpCallFailed)]
    for step in failed:
        why = cast(EpCallFailed, outcomes[step.pod]).why
        message = failed_message(name, step.pod, step.size, pool_size, why)
        kopf.event(pool, type="Warning", reason="EpScaleFailed", message=message)
    if stepped:
        message = converged_message(graph, pool_size, stepped)
        kopf.event(pool, type="Normal", reason="EpConverged", message=message)
    patch = convergence_status(
        plan, [step.pod for step in stepped], [step.pod for step in failed], current
    )
    if patch is None:
        return
    if patch["elasticEp"]["sizeUnknown"]:  # the status changed: once, not every interval
        left_alone = {pod: unread[pod] for pod in patch["elasticEp"]["sizeUnknown"]}
        _log.warning(unknown_message(name, left_alone))
    try:
        await kube.merge_patch(path_of(pool_body) + "/status", {"status": patch})
    except KubeError as error:  # the pods are read again next interval
        _log.warning("WorkerPool %s: elastic EP: cannot write the status: %s", name, error)


async def _step_pods(
    http: aiohttp.ClientSession, pods: dict[str, str], size: int
) -> dict[str, Json | EpCallFailed]:
    """`/scale_elastic_ep` on every pod (by name, its base URL) together."""
    outcomes = await asyncio.gather(*(_call(http, base_url, size) for base_url in pods.values()))
    return dict(zip(pods, outcomes, strict=True))


async def _call(http: aiohttp.ClientSession, base_url: str, size: int) -> Json | EpCallFailed:
    try:
        return await scale_elastic_ep(http, base_url, size)
    except EpCallFailed as failed:
        return failed


async def _read(http: aiohttp.ClientSession, base_url: str) -> int | EpCallFailed:
    try:
        return await read_ep_size(http, base_url)
    except EpCallFailed as failed:
        return failed


async def _serving_pods(kube: KubeClient, pool_body: Json) -> dict[str, str]:
    """Ready, undrained pods of the pool by name, with the base URL of their HTTP API."""
    metadata = pool_body["metadata"]
    pods = await kube.list(resource_path("v1", "Pod", metadata["namespace"]))
    serving = {}
    for pod in pods_of_pool(pods, metadata["name"]):
        base_url = http_base_url(pod)
        if is_ready(pod) and not is_draining(pod) and base_url is not None:
            serving[pod["metadata"]["name"]] = base_url
    return serving


def http_base_url(pod: Json) -> str | None:
    """`http://podIP:port` of the pod's `http` port; None until it has an IP, or when it
    declares none (mock pods serve only gRPC unless their engine args add the API)."""
    ip = pod.get("status", {}).get("podIP")
    if not ip:
        return None
    for container in pod.get("spec", {}).get("containers", []):
        for port in container.get("ports", []):
            if port.get("name") == HTTP_PORT_NAME:
                host = f"[{ip}]" if ":" in ip else ip
                return f"http://{host}:{port['containerPort']}"
    return None
