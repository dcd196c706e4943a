"""A whole router process (`run_router`) running inside the test's event loop, on
loopback port 0: the start-up, ready-wait and shutdown that router tests share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from triskel.router.process import (
    RouterEndpoints,
    RouterProcessConfig,
    RouterStartupError,
    run_router,
)

STARTUP_S = 30.0


def router_config(workers: list[str], **fields: Any) -> RouterProcessConfig:
    """A router in front of `workers`, listening on loopback port 0; `fields` (the
    config's camelCase names) added or replaced."""
    return RouterProcessConfig.model_validate(
        {"httpAddress": "127.0.0.1:0", "grpcAddress": "127.0.0.1:0", "workers": workers, **fields}
    )


@contextlib.asynccontextmanager
async def running_router(
    config: RouterProcessConfig, startup_s: float = STARTUP_S
) -> AsyncIterator[RouterEndpoints]:
    """The router's endpoints once it is ready, until the block ends (then it stops and
    is awaited). A router that fails to start raises its own error (RouterStartupError);
    one neither ready nor failed within `startup_s` fails the test."""
    stop = asyncio.Event()
    ready: asyncio.Future[RouterEndpoints] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_router(config, ready.set_result, stop))
    try:
        waiters: list[asyncio.Future[Any]] = [ready, task]
        await asyncio.wait(waiters, timeout=startup_s, return_when="FIRST_COMPLETED")
        if task.done():
            task.result()  # the router's own error
        assert ready.done(), f"the router was not ready within {startup_s} s"
        yield ready.result()
    finally:
        stop.set()
        # A start-up failure was raised above already; any other error of the router's
        # (a shutdown that fails or hangs) fails the test here.
        with contextlib.suppress(RouterStartupError):
            await asyncio.wait_for(task, startup_s)
