"""start_http_listener binds an IPv6 host written as addresses write it, bracketed."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from triskel.common.http_listener import HttpLimits, start_http_listener


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


@pytest.mark.asyncio
@pytest.mark.parametrize("host", ["[::1]", "::1", "127.0.0.1"])
async def test_serves_on_a_bracketed_or_bare_loopback_host(host: str) -> None:
    app = web.Application()
    app.router.add_get("/", _ok)
    runner, port = await start_http_listener(app, host, 0, HttpLimits())
    url_host = "[::1]" if ":" in host else host
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{url_host}:{port}/") as reply,
        ):
            assert (reply.status, await reply.text()) == (200, "ok")
    finally:
        await runner.cleanup()
