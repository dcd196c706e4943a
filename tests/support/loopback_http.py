"""A stand-in HTTP server on loopback for what the operator calls (a router's /metrics,
a worker's API), on a port the OS picks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def serving(routes: list[web.RouteDef]) -> AsyncIterator[str]:
    """An aiohttp app with `routes` on 127.0.0.1, port 0; yields its base URL
    (`http://127.0.0.1:PORT`) and stops it when the block ends."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
