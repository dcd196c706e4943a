"""The bootstrap listener and its client over real HTTP on loopback: every way a decode
worker's wait for its room can end, each naming the bootstrap server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from triskel.common.http_listener import HttpLimits
from triskel.workers.openai_http.bootstrap import BootstrapClient, build_bootstrap_app
from triskel.workers.openai_http.errors import ApiError
from triskel.workers.openai_http.requests import BootstrapParams
from triskel.workers.openai_http.rooms import BootstrapRooms, PublishedPrefill, RoomFailed
from triskel.workers.openai_http.server import serve_app

from support.waiting import wait_until

PREFILL = PublishedPrefill(40, 7, 0, None, {"do_remote_prefill": True})


@contextlib.asynccontextmanager
async def bootstrap_server(rooms: BootstrapRooms) -> AsyncIterator[int]:
    runner, address = await serve_app(build_bootstrap_app(rooms), "127.0.0.1:0", HttpLimits())
    try:
        yield int(address.rsplit(":", 1)[1])
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def client(wait_s: float) -> AsyncIterator[BootstrapClient]:
    bootstrap_client = BootstrapClient(wait_s)
    try:
        yield bootstrap_client
    finally:
        await bootstrap_client.close()


async def fetch_error(bootstrap_client: BootstrapClient, params: BootstrapParams) -> ApiError:
    with pytest.raises(ApiError) as raised:
        await bootstrap_client.fetch(params)
    return raised.value


@pytest.mark.asyncio
async def test_the_decode_side_gets_the_room_whichever_side_comes_first() -> None:
    rooms = BootstrapRooms(ttl_s=30)
    async with bootstrap_server(rooms) as port, client(wait_s=10) as bootstrap_client:
        waiting = asyncio.create_task(bootstrap_client.fetch(BootstrapParams("127.0.0.1", port, 1)))
        await wait_until(lambda: len(rooms) == 1)  # the long poll is in
        rooms.publish(1, PREFILL)
        assert await waiting == PREFILL
        rooms.publish(2, PREFILL)
        assert await bootstrap_client.fetch(BootstrapParams("127.0.0.1", port, 2)) == PREFILL


@pytest.mark.asyncio
async def test_a_room_never_published_is_a_504_within_the_bound() -> None:
    async with bootstrap_server(BootstrapRooms(ttl_s=30)) as port, client(0.3) as bootstrap_client:
        started = time.perf_counter()
        error = await fetch_error(bootstrap_client, BootstrapParams("127.0.0.1", port, 1))
        assert time.perf_counter() - started < 3
    assert error.status == 504
    assert f"did not publish bootstrap room 1 at bootstrap server 127.0.0.1:{port}" in error.message
    assert "within 0.3 s" in error.message


@pytest.mark.asyncio
async def test_a_failed_prefill_is_a_502_with_its_reason() -> None:
    rooms = BootstrapRooms(ttl_s=30)
    rooms.fail(1, RoomFailed("the engine ran out of memory"))
    async with bootstrap_server(rooms) as port, client(10) as bootstrap_client:
        error = await fetch_error(bootstrap_client, BootstrapParams("127.0.0.1", port, 1))
    assert error.status == 502
    assert f"bootstrap server 127.0.0.1:{port}" in error.message
    assert "the prefill of room 1 failed: the engine ran out of memory" in error.message


@pytest.mark.asyncio
async def test_a_prefill_that_refused_the_request_is_the_same_4xx() -> None:
    # The same body went to both workers: what is wrong with it there is wrong here too.
    rooms = BootstrapRooms(ttl_s=30)
    rooms.fail(1, RoomFailed("max_tokens: 9000 exceeds the context window", 400, "max_tokens"))
    async with bootstrap_server(rooms) as port, client(10) as bootstrap_client:
        error = await fetch_error(bootstrap_client, BootstrapParams("127.0.0.1", port, 1))
    assert (error.status, error.param) == (400, "max_tokens")
    assert "the prefill worker refused the request: max_tokens: 9000" in error.message


@pytest.mark.asyncio
async def test_an_unreachable_bootstrap_server_is_a_502_naming_it() -> None:
    async with bootstrap_server(BootstrapRooms(ttl_s=30)) as port:
        pass  # now nothing listens on `port`
    async with client(10) as bootstrap_client:
        error = await fetch_error(bootstrap_client, BootstrapParams("127.0.0.1", port, 1))
    assert error.status == 502
    assert f"bootstrap server 127.0.0.1:{port}" in error.message
    assert "unreachable or dropped the connection" in error.message


@pytest.mark.asyncio
async def test_a_stopping_prefill_worker_fails_the_wait_at_once() -> None:
    rooms = BootstrapRooms(ttl_s=30)
    async with bootstrap_server(rooms) as port, client(30) as bootstrap_client:
        waiting = asyncio.create_task(bootstrap_client.fetch(BootstrapParams("127.0.0.1", port, 1)))
        await wait_until(lambda: len(rooms) == 1)
        rooms.close("the prefill worker is stopping")
        with pytest.raises(ApiError) as raised:
            await asyncio.wait_for(waiting, 5)  # long before the 30 s bound
    assert raised.value.status == 502
    assert "the prefill worker is stopping" in raised.value.message


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/triskel/bootstrap/rooms/abc?wait_s=1", "room: 'abc' is not an integer"),
        ("/triskel/bootstrap/rooms/1?wait_s=600", "wait_s: must be a number of seconds"),
        ("/triskel/bootstrap/rooms/1?wait_s=soon", "wait_s: must be a number of seconds"),
    ],
)
@pytest.mark.asyncio
async def test_bad_polls_are_400s(path: str, fragment: str) -> None:
    async with (
        bootstrap_server(BootstrapRooms(ttl_s=30)) as port,
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as reply,
    ):
        assert reply.status == 400
        assert fragment in (await reply.json())["error"]["message"]
