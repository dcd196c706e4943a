"""Mock workers as tasks on loopback port 0, for tests that need real ones to route to."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from triskel.common.api import WorkerPoolSpec
from triskel.workers.process import WorkerProcessConfig, run_worker

STARTUP_TIMEOUT_S = 30.0


@contextlib.asynccontextmanager
async def local_workers(pool_spec: Mapping[str, Any], count: int) -> AsyncIterator[list[str]]:
    """`count` workers of one pool (ids w0, w1, ...); yields their gRPC addresses."""
    spec = WorkerPoolSpec.model_validate(pool_spec)
    stop = asyncio.Event()
    tasks, addresses = [], []
    try:
        for i in range(count):
            ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            config = WorkerProcessConfig(worker_id=f"w{i}", pool=spec, drain_timeout_s=2.0)
            tasks.append(asyncio.create_task(run_worker(config, ready.set_result, stop)))
            addresses.append(await asyncio.wait_for(ready, STARTUP_TIMEOUT_S))
        yield addresses
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
