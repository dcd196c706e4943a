"""Starting and stopping the HTTP API and the bootstrap listener on port 0, and the
listener's timeouts and connection cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from triskel.common.api import Role
from triskel.common.http_listener import HttpLimits
from triskel.workers.mock_engine import MockEngine
from triskel.workers.openai_http.app import HttpApiSettings
from triskel.workers.openai_http.server import WorkerHttpApi, start_worker_http_api

from support.engines import mock_engine
from support.hostile_clients import (
    expect_a_stalled_body_answered_408,
    expect_an_unfinished_head_closed,
    expect_connections_beyond_the_cap_refused,
    expect_malformed_requests_refused_quietly,
)
from support.waiting import wait_until


@pytest_asyncio.fixture
async def engine() -> AsyncIterator[MockEngine]:
    started = mock_engine(Role.PREFILL, "p")
    await started.start()
    yield started
    await started.close()


async def status_of(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as reply:
        return reply.status


@pytest.mark.asyncio
async def test_both_listeners_bind_free_ports_and_close(engine: MockEngine) -> None:
    api = await start_worker_http_api(engine, "127.0.0.1:0", "127.0.0.1:0")
    assert api.bootstrap_address is not None
    assert api.http_address.startswith("127.0.0.1:") and not api.http_address.endswith(":0")
    assert await status_of(f"http://{api.http_address}/health") == 200
    assert await status_of(f"http://{api.bootstrap_address}/health") == 200
    await api.close()
    for address in (api.http_address, api.bootstrap_address):
        with pytest.raises(aiohttp.ClientConnectionError):
            await status_of(f"http://{address}/health")


@pytest.mark.asyncio
async def test_a_stopping_worker_fails_its_health_check_but_still_serves(
    engine: MockEngine,
) -> None:
    api = await start_worker_http_api(engine, "127.0.0.1:0")
    try:
        api.mark_stopping()
        assert await status_of(f"http://{api.http_address}/health") == 503
        assert await status_of(f"http://{api.http_address}/v1/models") == 200
    finally:
        await api.close()


@pytest.mark.asyncio
async def test_closing_answers_waiting_decode_workers_at_once(engine: MockEngine) -> None:
    api = await start_worker_http_api(engine, "127.0.0.1:0", "127.0.0.1:0")
    url = f"http://{api.bootstrap_address}/triskel/bootstrap/rooms/9?wait_s=30"
    async with aiohttp.ClientSession() as session:
        poll = asyncio.create_task(session.get(url))
        # Once the poll is in, stop: its answer must not wait out its 30 s.
        await wait_until(lambda: len(api._bootstrap.rooms) == 1)  # type: ignore[union-attr]
        await api.close()
        reply = await asyncio.wait_for(poll, 5)
        assert reply.status == 502
        assert "the prefill worker is stopping" in (await reply.json())["error"]["message"]


# --- slow and greedy clients (the test's limits are short; the defaults are seconds) ------


async def started_with(engine: MockEngine, limits: HttpLimits) -> tuple[WorkerHttpApi, int]:
    settings = HttpApiSettings(limits=limits)
    api = await start_worker_http_api(engine, "127.0.0.1:0", settings=settings)
    return api, int(api.http_address.rsplit(":", 1)[1])


@pytest.mark.asyncio
async def test_a_request_head_that_never_ends_is_closed_after_the_header_timeout(
    engine: MockEngine,
) -> None:
    api, port = await started_with(engine, HttpLimits(header_timeout_s=0.3))
    try:
        await expect_an_unfinished_head_closed(port, within_s=1.0)
    finally:
        await api.close()


@pytest.mark.asyncio
async def test_a_body_shorter_than_its_content_length_is_a_408_after_the_body_timeout(
    engine: MockEngine,
) -> None:
    api, port = await started_with(engine, HttpLimits(body_idle_timeout_s=0.3))
    try:
        await expect_a_stalled_body_answered_408(port, 0.3, within_s=1.0)
    finally:
        await api.close()


@pytest.mark.asyncio
async def test_connections_beyond_the_cap_are_refused_while_open_ones_are_served(
    engine: MockEngine,
) -> None:
    api, port = await started_with(engine, HttpLimits(max_connections=2))
    try:
        await expect_connections_beyond_the_cap_refused(port, 2)
    finally:
        await api.close()


@pytest.mark.asyncio
async def test_malformed_requests_are_400s_with_one_log_line_at_most(
    engine: MockEngine, caplog: pytest.LogCaptureFixture
) -> None:
    api, port = await started_with(engine, HttpLimits())
    try:
        await expect_malformed_requests_refused_quietly(port, caplog)
    finally:
        await api.close()
