"""Fetching the router's /metrics: the text, or a failure in the configured URL's terms."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from triskel.operator.router_scrape import ScrapeFailed, fetch_metrics
from triskel.router.metrics import RouterMetrics


@pytest_asyncio.fixture
async def router_url() -> AsyncIterator[str]:
    """A stand-in router on loopback: /metrics as the router renders it, and failures."""
    metrics = RouterMetrics()
    metrics.observe_request("m", "http", "ok", ttft_s=0.05, tpot_s=0.01)

    async def exposition(_request: web.Request) -> web.Response:
        body, content_type = metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def failing(_request: web.Request) -> web.Response:
        return web.Response(status=503, text="router overloaded at 10.0.0.7")

    async def moved(_request: web.Request) -> web.Response:
        raise web.HTTPFound("http://10.0.0.7:8080/metrics")

    async def hanging(_request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response()

    app = web.Application()
    for path, handler in [
        ("/metrics", exposition),
        ("/failing", failing),
        ("/moved", moved),
        ("/hanging", hanging),
    ]:
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.asyncio
async def test_the_routers_exposition_is_returned_as_text(router_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        text = await fetch_metrics(session, f"{router_url}/metrics")
    assert 'triskel_requests_total{front="http",model="m",status="ok"} 1.0' in text


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "why"),
    [
        # The body's words (an internal address) are not repeated.
        ("/failing", "HTTP 503"),
        # A redirect is not followed: its target is no address the user configured.
        ("/moved", "HTTP 302"),
    ],
)
async def test_an_answer_other_than_200_is_named_by_its_status_alone(
    router_url: str, path: str, why: str
) -> None:
    url = router_url + path
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ScrapeFailed) as raised:
            await fetch_metrics(session, url)
    assert str(raised.value) == f"cannot read {url}: {why}"


@pytest.mark.asyncio
async def test_a_refused_connection_says_so_without_the_os_errors_address() -> None:
    url = f"http://127.0.0.1:{closed_port()}/metrics"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ScrapeFailed) as raised:
            await fetch_metrics(session, url)
    # The OS error's text ("Connect call failed ('127.0.0.1', port)") would name the
    # address a host name resolved to; only its errno is kept.
    assert str(raised.value) == f"cannot read {url}: cannot connect (Connection refused)"


@pytest.mark.asyncio
async def test_a_router_that_never_answers_is_given_up_on(router_url: str) -> None:
    url = router_url + "/hanging"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ScrapeFailed) as raised:
            await fetch_metrics(session, url, timeout_s=0.2)
    assert str(raised.value) == f"cannot read {url}: no answer within 0.2 s"
