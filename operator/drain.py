"""Drain before removal: stop routing to pods, then wait (bounded) for their work to end.

    mark pods draining ──► routers drop them (WorkerPool status.endpoints no longer
    lists them) ──► poll each worker's in-flight work until 0 or the deadline
    ──► the caller removes them (shrinks the Deployment or deletes the pool)

A drain that hits its deadline is reported, never waited on forever: removal
must not hang on a stuck request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from triskel.common.kube import KubeClient, resource_path
from triskel.operator.pods import drain_patch, grpc_address, is_draining
from triskel.operator.worker_probe import work_in_flight

POLL_INTERVAL_S = 0.25

Json = dict[str, Any]
WorkProbe = Callable[[str], Awaitable[int | None]]


@dataclass(slots=True)
class DrainResult:
    drained: list[str] = field(default_factory=list)
    # Pods that still had work when the deadline passed: removed anyway.
    timed_out: list[str] = field(default_factory=list)


async def mark_draining(kube: KubeClient, pods: Sequence[Json], now: str) -> None:
    for pod in pods:
        if not is_draining(pod):
            metadata = pod["metadata"]
            path = resource_path("v1", "Pod", metadata["namespace"], metadata["name"])
            await kube.merge_patch(path, drain_patch(now))


async def wait_drained(
    pods: Sequence[Json],
    timeout_s: float,
    probe: WorkProbe = work_in_flight,
    clock: Callable[[], float] = time.monotonic,
) -> DrainResult:
    """Polls every pod's in-flight work until all are idle or `timeout_s` passes."""
    pending = {p["metadata"]["name"]: grpc_address(p) for p in pods}
    result = DrainResult()
    deadline = clock() + timeout_s
    while pending:
        for name, address in list(pending.items()):
            work = None if address is None else await probe(address)
            if not work:  # idle, or gone
                result.drained.append(name)
                del pending[name]
        if not pending or clock() >= deadline:
            break
        await asyncio.sleep(POLL_INTERVAL_S)
    result.timed_out = sorted(pending)
    result.drained.sort()
    return result
