"""A full router queue answers 429 with Retry-After (HTTP) and RESOURCE_EXHAUSTED (gRPC)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
import pytest_asyncio

from triskel.v1 import router_pb2, router_pb2_grpc

from support.cluster import LocalCluster, local_cluster, small_config

MODEL = "m"
PROFILE = "{name: llama-3.1-8b-h100, kvCapacityTokens: 32768, timeScale: 0.05}"
# One request runs and none may wait: a second concurrent request is refused.
CONFIG = f"""
pools:
  - {{name: unified, role: unified, model: {MODEL}, profile: {PROFILE}}}
routing:
  admission: {{maxInFlight: 1, maxQueued: 0}}
"""
LONG = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Tell a long story."}],
    "max_tokens": 4000,
    "ignore_eos": True,
    "stream": True,
}
SHORT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[LocalCluster]:
    async with local_cluster(small_config(CONFIG)) as running:
        yield running


@pytest.mark.asyncio
async def test_a_full_queue_is_refused_with_429_and_retry_after_then_recovers(
    cluster: LocalCluster,
) -> None:
    async with aiohttp.ClientSession() as session:
        long = await session.post(f"{cluster.http_url}/v1/chat/completions", json=LONG)
        assert long.status == 200
        await long.content.readline()  # the first chunk: the long request holds the slot

        async with session.post(f"{cluster.http_url}/v1/chat/completions", json=SHORT) as refused:
            assert refused.status == 429
            assert int(refused.headers["Retry-After"]) >= 1
            error = (await refused.json())["error"]
            assert "admission queue full" in error["message"]

        channel = grpc.aio.insecure_channel(cluster.grpc_address)
        try:
            stub = router_pb2_grpc.RouterStub(channel)
            request = router_pb2.GenerateRequest(model=MODEL, prompt="hi", max_tokens=4)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                async for _ in stub.Generate(request):
                    pass
            assert raised.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        finally:
            await channel.close()

        long.close()  # the client goes away: its slot frees
        await _eventually_ok(session, cluster.http_url)


async def _eventually_ok(session: aiohttp.ClientSession, base_url: str) -> None:
    for _ in range(100):
        async with session.post(f"{base_url}/v1/chat/completions", json=SHORT) as response:
            if response.status == 200:
                body = await response.json()
                assert body["choices"][0]["message"]["content"]
                return
            assert response.status == 429, json.dumps(await response.json())
        await asyncio.sleep(0.05)
    raise AssertionError("the slot never freed after the long request's client left")


@pytest.mark.asyncio
async def test_a_bad_priority_header_is_a_400_naming_the_header(cluster: LocalCluster) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{cluster.http_url}/v1/chat/completions",
            json=SHORT,
            headers={"x-priority": "urgent"},
        ) as response,
    ):
        assert response.status == 400
        assert "x-priority" in (await response.json())["error"]["message"]
