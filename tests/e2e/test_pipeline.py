"""End to end in one process: HTTP and gRPC through the router to mock workers and back."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio

from triskel.v1 import router_pb2, router_pb2_grpc, worker_pb2, worker_pb2_grpc

from support.cluster import LocalCluster, local_cluster, small_config

MODEL = "llama-3.1-8b"
# Small KV arenas and a fast clock keep the test light; the pipeline is the real one.
PROFILE = "{name: llama-3.1-8b-h100, kvCapacityTokens: 32768, timeScale: 0.05}"
DISAGGREGATED = f"""
pools:
  - {{name: encode, role: encode, model: {MODEL}, profile: {PROFILE}}}
  - {{name: prefill, role: prefill, model: {MODEL}, profile: {PROFILE}}}
  - {{name: decode, role: decode, model: {MODEL}, profile: {PROFILE}}}
"""
UNIFIED = f"""
pools:
  - {{name: unified, role: unified, model: {MODEL}, replicas: {{min: 2, max: 2}},
     profile: {PROFILE}}}
"""
CHAT = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Explain disaggregated prefill and decode."}],
    "max_tokens": 24,
}


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[LocalCluster]:
    async with local_cluster(small_config(DISAGGREGATED)) as running:
        yield running


async def stream_chat(base_url: str, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The streamed text and every SSE event (as parsed JSON) of one chat completion."""
    events: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/v1/chat/completions", json={**body, "stream": True}) as response,
    ):
        assert response.status == 200, await response.text()
        async for raw in response.content:
            line = raw.decode().strip()
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line[len("data: ") :]))
    text = "".join(
        choice["delta"].get("content", "") for event in events for choice in event["choices"]
    )
    return text, events


async def grpc_text(
    address: str, request: router_pb2.GenerateRequest
) -> tuple[str, router_pb2.Finished]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = router_pb2_grpc.RouterStub(channel)
        text = ""
        finished = None
        async for response in stub.Generate(request):
            if response.HasField("chunk"):
                text += response.chunk.text
            else:
                finished = response.finished
    assert finished is not None
    return text, finished


def chat_request(content: str, max_tokens: int) -> router_pb2.GenerateRequest:
    message = router_pb2.ChatMessage(role="user", content=[router_pb2.ContentPart(text=content)])
    return router_pb2.GenerateRequest(
        model=MODEL, chat=router_pb2.ChatMessages(messages=[message]), max_tokens=max_tokens
    )


async def metric_value(base_url: str, name: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/metrics") as response:
        body = await response.text()
    values = [float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", body, re.M)]
    return sum(values)


@pytest.mark.asyncio
async def test_stream_http_and_grpc_give_the_same_text_and_move_kv_bytes(
    cluster: LocalCluster,
) -> None:
    with_usage = {**CHAT, "stream_options": {"include_usage": True}}
    text, events = await stream_chat(cluster.http_url, with_usage)
    # Output is seeded by the prompt, so both fronts must produce identical text.
    grpc_output, finished = await grpc_text(
        cluster.grpc_address, chat_request("Explain disaggregated prefill and decode.", 24)
    )
    assert text and text == grpc_output
    # A chunk may carry several tokens (those the worker made while the last were sent):
    # the usage chunk counts them, the same as gRPC's.
    (usage,) = [e["usage"] for e in events if e.get("usage")]
    assert finished.usage.completion_tokens == usage["completion_tokens"] == 24
    assert await metric_value(cluster.http_url, "triskel_kv_transfer_bytes_total") > 0


@pytest.mark.asyncio
async def test_non_streamed_completion_matches_the_stream(cluster: LocalCluster) -> None:
    streamed, _ = await stream_chat(cluster.http_url, CHAT)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{cluster.http_url}/v1/chat/completions", json=CHAT) as response,
    ):
        body = await response.json()
    assert response.status == 200, body
    assert body["choices"][0]["message"]["content"] == streamed
    assert body["usage"]["completion_tokens"] >= 1


@pytest.mark.asyncio
async def test_repeated_prompt_hits_the_prefix_cache(cluster: LocalCluster) -> None:
    long_prompt = "A long shared system prompt about routing and caching. " * 40
    body = {"model": MODEL, "prompt": long_prompt, "max_tokens": 4}
    usages = []
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.post(f"{cluster.http_url}/v1/completions", json=body) as response:
                usages.append((await response.json())["usage"])
    # One prefill worker: the second request finds every full block of the first.
    assert usages[0]["prompt_tokens_details"]["cached_tokens"] == 0
    cached = usages[1]["prompt_tokens_details"]["cached_tokens"]
    assert cached >= usages[1]["prompt_tokens"] - 16


@pytest.mark.asyncio
async def test_images_go_through_the_encode_worker(cluster: LocalCluster) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}}
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Describe:"}, image]}],
        "max_tokens": 4,
    }
    text_only = {**body, "messages": [{"role": "user", "content": "Describe:"}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{cluster.http_url}/v1/chat/completions", json=body) as r:
            with_image = await r.json()
        async with session.post(f"{cluster.http_url}/v1/chat/completions", json=text_only) as r:
            without = await r.json()
    # A default 336×336 image at 28 px per token side is 12 × 12 = 144 embedding tokens.
    assert with_image["usage"]["prompt_tokens"] - without["usage"]["prompt_tokens"] == 144


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**CHAT, "max_tokens": 0}, "max_tokens"),
        ({**CHAT, "model": "no-such-model"}, "model"),
        ({**CHAT, "messages": []}, "messages"),
        ({**CHAT, "messages": [{"role": "user", "content": "word " * 200_000}]}, "messages"),
        ({**CHAT, "max_tokens": 10_000_000}, "max_tokens"),
    ],
)
@pytest.mark.asyncio
async def test_bad_input_is_a_400_naming_the_field(
    cluster: LocalCluster, body: dict[str, object], field: str
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{cluster.http_url}/v1/chat/completions", json=body) as response,
    ):
        error = (await response.json())["error"]
    assert response.status == 400
    assert field in error["message"]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (chat_request("hello", 0), "max_tokens"),
        (router_pb2.GenerateRequest(model="nope", prompt="hi", max_tokens=4), "model"),
        (router_pb2.GenerateRequest(model=MODEL, max_tokens=4), "prompt"),
    ],
)
@pytest.mark.asyncio
async def test_bad_grpc_input_is_invalid_argument(
    cluster: LocalCluster, request_: router_pb2.GenerateRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await grpc_text(cluster.grpc_address, request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")


@pytest.mark.asyncio
async def test_unified_workers_serve_without_kv_transfer() -> None:
    async with local_cluster(small_config(UNIFIED)) as cluster:
        text, _ = await stream_chat(cluster.http_url, CHAT)
        assert text
        assert await metric_value(cluster.http_url, "triskel_kv_transfer_bytes_total") == 0


async def worker_load(address: str) -> worker_pb2.WorkerStats:
    async with grpc.aio.insecure_channel(address) as channel:
        stats = worker_pb2_grpc.WorkerStub(channel).StreamStats(worker_pb2.StreamStatsRequest())
        first: worker_pb2.WorkerStats = await anext(aiter(stats))
        stats.cancel()
        return first


@pytest.mark.asyncio
async def test_a_client_that_leaves_mid_stream_frees_the_decode_worker(
    cluster: LocalCluster,
) -> None:
    body = {**CHAT, "max_tokens": 20_000, "ignore_eos": True, "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{cluster.http_url}/v1/chat/completions", json=body) as response,
    ):
        for _ in range(5):
            await response.content.readline()
        decode = cluster.worker_addresses["decode-0"]
        assert (await worker_load(decode)).num_running_requests == 1
    # The connection is closed: the router cancels the Decode call, the worker aborts.
    loads: list[worker_pb2.WorkerStats] = []

    async def idle() -> bool:
        loads.append(await worker_load(decode))
        return loads[-1].num_running_requests == 0 and loads[-1].kv_usage == 0

    deadline = asyncio.get_running_loop().time() + 10
    while not await idle():
        assert asyncio.get_running_loop().time() < deadline, loads[-1]
        await asyncio.sleep(0.05)
