"""Elastic EP steps in the background: one task per pool, so a step of tens of seconds
does not hold up the graph's autoscaling loop.

    EpSteps.start(pool, run_step(...))   while it runs, `is_running(pool)` skips the pool
    run_step: the pool's ready pods ──► POST /scale_elastic_ep on each, together
        all answered 200 ──► status.elasticEp (size, lastStep) and a Normal `EpScaled`
        any failed ──► a Warning `EpScaleFailed` per pod; the status keeps the old size

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

from triskel.common.kube import KubeClient, KubeError, path_of, resource_path
from triskel.operator.elastic_ep import (
    EpStepResult,
    failed_message,
    scaled_message,
    status_patch,
    step_result,
)
from triskel.operator.elastic_ep_client import EpCallFailed, scale_elastic_ep
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
    outcomes = await asyncio.gather(
        *(_call(http, base_url, order.to_size) for base_url in pods.values())
    )
    seconds = clock() - started
    answers = []
    for pod, outcome in zip(pods, outcomes, strict=True):
        if isinstance(outcome, EpCallFailed):
            message = failed_message(name, pod, order.from_size, order.to_size, outcome.why)
            kopf.event(pool, type="Warning", reason="EpScaleFailed", message=message)
        else:
            answers.append(outcome)
    if len(answers) < len(pods):
        return
    result: EpStepResult = step_result(answers[0], order.from_size, order.to_size, seconds)
    await kube.merge_patch(
        path_of(order.pool_body) + "/status", {"status": status_patch(result, now())}
    )
    kopf.event(pool, type="Normal", reason="EpScaled", message=scaled_message(order.graph, result))


async def _call(http: aiohttp.ClientSession, base_url: str, size: int) -> Json | EpCallFailed:
    try:
        return await scale_elastic_ep(http, base_url, size)
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
