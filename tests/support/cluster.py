"""An in-process Triskel deployment for tests: workers and router as tasks on port 0.

Everything real but the process boundary: gRPC over loopback sockets, KV bytes
over the connectors' loopback sockets, HTTP over a real listener.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from triskel.cli.up import worker_configs
from triskel.cli.up_config import UpConfig, parse_up_config
from triskel.router.process import RouterEndpoints, RouterProcessConfig, run_router
from triskel.workers.process import WorkerEndpoints, WorkerProcessConfig, run_worker

STARTUP_TIMEOUT_S = 60.0
T = TypeVar("T")


@dataclass
class LocalCluster:
    http_url: str
    grpc_address: str
    worker_addresses: dict[str, str] = field(default_factory=dict)


def small_config(yaml_text: str) -> UpConfig:
    return parse_up_config(yaml_text, "<test>")


@contextlib.asynccontextmanager
async def local_cluster(config: UpConfig) -> AsyncIterator[LocalCluster]:
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    workers: dict[str, str] = {}
    try:
        for worker in worker_configs(config):
            tasks.append(await _start_worker(worker, stop, workers))
        ready: asyncio.Future[RouterEndpoints] = asyncio.get_running_loop().create_future()
        router_config = RouterProcessConfig(
            http_address="127.0.0.1:0",
            grpc_address="127.0.0.1:0",
            workers=list(workers.values()),
            routing=config.routing,
        )
        tasks.append(asyncio.create_task(run_router(router_config, ready.set_result, stop)))
        endpoints = await asyncio.wait_for(_first(ready, tasks[-1]), STARTUP_TIMEOUT_S)
        yield LocalCluster(f"http://{endpoints.http_address}", endpoints.grpc_address, workers)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _start_worker(
    config: WorkerProcessConfig, stop: asyncio.Event, addresses: dict[str, str]
) -> asyncio.Task[None]:
    ready: asyncio.Future[WorkerEndpoints] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_worker(config, ready.set_result, stop))
    endpoints = await asyncio.wait_for(_first(ready, task), STARTUP_TIMEOUT_S)
    addresses[config.worker_id] = endpoints.grpc
    return task


async def _first(ready: asyncio.Future[T], task: asyncio.Task[None]) -> T:
    """The ready value, or the task's exception if it died first."""
    waiters: list[asyncio.Future[Any]] = [ready, task]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if ready.done():
        return ready.result()
    task.result()
    raise RuntimeError("component stopped before it was ready")
