"""Request ids and stop sequences through the router to a mock worker, over HTTP and gRPC."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import pytest

from triskel.v1 import router_pb2, router_pb2_grpc

from support.cluster import local_cluster, small_config

MODEL = "llama-3.1-8b"
# One worker, so both requests meet on it; slow enough that they overlap.
UP = f"""
pools:
  - name: unified
    role: unified
    model: {MODEL}
    profile: {{name: llama-3.1-8b-h100, kvCapacityTokens: 32768, timeScale: 1.0}}
"""
REQUEST_ID = "client-chosen-id"


@pytest.mark.asyncio
async def test_the_same_request_id_in_flight_twice_is_served_on_both_fronts() -> None:
    # Finding 8: the second request met the first on the worker, which refused it
    # ("request_id: ... is already in use") - a check per worker, not per router.
    async with local_cluster(small_config(UP)) as cluster, aiohttp.ClientSession() as session:
        body = {"model": MODEL, "prompt": "hello there", "max_tokens": 40, "ignore_eos": True}

        async def over_http() -> tuple[int, str, str]:
            url = f"{cluster.http_url}/v1/completions"
            headers = {"x-request-id": REQUEST_ID}
            async with session.post(url, json=body, headers=headers) as response:
                return response.status, response.headers["x-request-id"], await response.text()

        async def over_grpc() -> str:
            request = router_pb2.GenerateRequest(
                model=MODEL,
                prompt="hello there",
                max_tokens=40,
                ignore_eos=True,
                request_id=REQUEST_ID,
            )
            async with grpc.aio.insecure_channel(cluster.grpc_address) as channel:
                responses = [r async for r in router_pb2_grpc.RouterStub(channel).Generate(request)]
            return str(responses[-1].finished.request_id)

        first, second, third = await asyncio.wait_for(
            asyncio.gather(over_http(), over_http(), over_grpc()), 60
        )
    for status, echoed, text in (first, second):
        assert status == 200, text
        assert echoed == REQUEST_ID  # the client's id comes back as it sent it
    assert third == REQUEST_ID


PROMPT = "Tell me about stop sequences."


@pytest.mark.asyncio
async def test_a_stop_string_ends_the_answer_before_it() -> None:
    # Finding 7: the answer contained the stop string and finished with "length".
    async with local_cluster(small_config(UP)) as cluster, aiohttp.ClientSession() as session:
        url = f"{cluster.http_url}/v1/completions"
        body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 12, "ignore_eos": True}
        async with session.post(url, json=body) as response:
            full = (await response.json())["choices"][0]["text"]
        # The mock answers a prompt the same way every time: stop at its fourth word.
        words = full.split()
        stop = f" {words[3]}"
        expected = full[: full.index(stop)]
        async with session.post(url, json=body | {"stop": [stop]}) as response:
            choice = (await response.json())["choices"][0]
        assert (choice["text"], choice["finish_reason"]) == (expected, "stop")
        request = router_pb2.GenerateRequest(
            model=MODEL, prompt=PROMPT, max_tokens=12, ignore_eos=True, stop=[stop]
        )
        async with grpc.aio.insecure_channel(cluster.grpc_address) as channel:
            responses = [r async for r in router_pb2_grpc.RouterStub(channel).Generate(request)]
        text = "".join(r.chunk.text for r in responses if r.HasField("chunk"))
        assert (text, responses[-1].finished.finish_reason) == (expected, "stop")
