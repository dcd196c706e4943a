"""The shared validator: HTTP and gRPC refuse the same inputs with the same message, before
the generator (and so any worker) sees them. Real fronts on 127.0.0.1:0 over a fake generator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio
from aiohttp import web

from triskel.common.request_limits import (
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE_PX,
    MAX_IMAGES_PER_REQUEST,
)
from triskel.router.grpc_api import RouterServicer, start_grpc_server
from triskel.router.http_api import build_http_app
from triskel.router.metrics import RouterMetrics
from triskel.v1 import router_pb2, router_pb2_grpc

from support.fake_generator import MODEL, FakeGenerator


@dataclass
class Fronts:
    generator: FakeGenerator
    http_url: str
    session: aiohttp.ClientSession
    stub: router_pb2_grpc.RouterStub

    async def http_error(self, body: dict[str, Any]) -> tuple[str, str]:
        """(param, message) of the HTTP front's 400."""
        url = f"{self.http_url}/v1/chat/completions"
        async with self.session.post(url, json=body) as response:
            assert response.status == 400, await response.text()
            error = (await response.json())["error"]
        return error["param"], error["message"]

    async def grpc_error(self, request: router_pb2.GenerateRequest) -> str:
        """The gRPC front's INVALID_ARGUMENT details."""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in self.stub.Generate(request):
                pass
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        return caught.value.details() or ""


@pytest_asyncio.fixture
async def fronts() -> AsyncIterator[Fronts]:
    generator, metrics = FakeGenerator(), RouterMetrics()
    runner = web.AppRunner(build_http_app(generator, metrics))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    http_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    server, port = await start_grpc_server(RouterServicer(generator, metrics), "127.0.0.1:0")
    async with (
        aiohttp.ClientSession() as session,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield Fronts(generator, http_url, session, router_pb2_grpc.RouterStub(channel))
    await server.stop(None)
    await runner.cleanup()


def http_images(*sizes: tuple[int, int]) -> dict[str, Any]:
    parts = [
        {"type": "image_url", "image_url": {"url": f"https://x/{i}", "width": w, "height": h}}
        for i, (w, h) in enumerate(sizes)
    ]
    return {"model": MODEL, "messages": [{"role": "user", "content": parts}]}


def grpc_images(*sizes: tuple[int, int]) -> router_pb2.GenerateRequest:
    parts = [
        router_pb2.ContentPart(
            image=router_pb2.ImagePart(url=f"https://x/{i}", width_px=w, height_px=h)
        )
        for i, (w, h) in enumerate(sizes)
    ]
    message = router_pb2.ChatMessage(role="user", content=parts)
    return router_pb2.GenerateRequest(
        model=MODEL, chat=router_pb2.ChatMessages(messages=[message]), max_tokens=4
    )


FULL = (3584, 3584)  # exactly one image's pixel budget; two fill a request's
assert FULL[0] * FULL[1] == MAX_IMAGE_PIXELS
CASES = [
    # Finding 1: 2^32-1 px a side drove an encode worker to 12 GB.
    pytest.param([(2**32 - 1, 2**32 - 1)], ".content[0].{image}.{width}", id="uint32-max"),
    pytest.param([(MAX_IMAGE_SIDE_PX + 1, 1)], ".content[0].{image}.{width}", id="side"),
    pytest.param([(1, MAX_IMAGE_SIDE_PX + 1)], ".content[0].{image}.{height}", id="height"),
    # 16384x16384 was encoded for 6 s before the context check refused it.
    pytest.param([(8192, 8192)], ".content[0].{image}", id="pixels"),
    pytest.param([FULL, FULL, (336, 336)], "", id="request-pixels"),
    pytest.param([(28, 28)] * (MAX_IMAGES_PER_REQUEST + 1), "", id="count"),
]


@pytest.mark.parametrize(("sizes", "field_suffix"), CASES)
@pytest.mark.asyncio
async def test_both_fronts_refuse_oversized_images_alike(
    fronts: Fronts, sizes: list[tuple[int, int]], field_suffix: str
) -> None:
    http_field = "messages" + (
        "[0]" + field_suffix.format(image="image_url", width="width", height="height")
        if field_suffix
        else ""
    )
    grpc_field = "chat.messages" + (
        "[0]" + field_suffix.format(image="image", width="width_px", height="height_px")
        if field_suffix
        else ""
    )
    param, http_message = await fronts.http_error(http_images(*sizes))
    grpc_details = await fronts.grpc_error(grpc_images(*sizes))
    assert param == http_field
    # The same check said the same thing on both fronts, each in its own field spelling.
    assert grpc_details == http_message.replace(http_field, grpc_field, 1)
    assert grpc_details.startswith(f"{grpc_field}: ")
    assert fronts.generator.requests == []  # refused before any stage ran


@pytest.mark.asyncio
async def test_images_within_the_limits_pass(fronts: Fronts) -> None:
    body = http_images(FULL, (336, 336))
    async with fronts.session.post(f"{fronts.http_url}/v1/chat/completions", json=body) as reply:
        assert reply.status == 200, await reply.text()


def http_chat(role: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": role, "content": "hi"}]}


def grpc_chat(role: str, request_id: str = "") -> router_pb2.GenerateRequest:
    message = router_pb2.ChatMessage(role=role, content=[router_pb2.ContentPart(text="hi")])
    return router_pb2.GenerateRequest(
        model=MODEL,
        chat=router_pb2.ChatMessages(messages=[message]),
        max_tokens=4,
        request_id=request_id,
    )


@pytest.mark.asyncio
async def test_both_fronts_take_the_developer_role(fronts: Fronts) -> None:
    # Finding 8: HTTP took OpenAI's "developer" role and gRPC refused it.
    url = f"{fronts.http_url}/v1/chat/completions"
    async with fronts.session.post(url, json=http_chat("developer")) as reply:
        assert reply.status == 200, await reply.text()
    responses = [r async for r in fronts.stub.Generate(grpc_chat("developer"))]
    assert responses[-1].HasField("finished")
    assert [(r.messages or ())[0].role for r in fronts.generator.requests] == [
        "developer",
        "developer",
    ]


@pytest.mark.asyncio
async def test_both_fronts_refuse_an_unknown_role_alike(fronts: Fronts) -> None:
    param, http_message = await fronts.http_error(http_chat("robot"))
    grpc_details = await fronts.grpc_error(grpc_chat("robot"))
    assert param == "messages[0].role"
    assert grpc_details == "chat." + http_message


@pytest.mark.parametrize("request_id", ["x" * 129, "tab\there", "é"])
@pytest.mark.asyncio
async def test_both_fronts_refuse_a_bad_request_id_alike(fronts: Fronts, request_id: str) -> None:
    url = f"{fronts.http_url}/v1/chat/completions"
    headers = {"x-request-id": request_id}
    async with fronts.session.post(url, json=http_chat("user"), headers=headers) as reply:
        assert reply.status == 400
        http_message = (await reply.json())["error"]["message"]
    grpc_details = await fronts.grpc_error(grpc_chat("user", request_id))
    assert http_message.startswith("x-request-id: ")
    assert grpc_details == "request_id: " + http_message.removeprefix("x-request-id: ")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        # Finding 7: these were a 200 with the field silently dropped.
        ({"temperature": "x"}, "temperature"),
        ({"tools": 5}, "tools"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": "1"}, "top_p"),
        ({"top_k": 1.5}, "top_k"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"seed": "1"}, "seed"),
        ({"seed": True}, "seed"),  # JSON true is not an integer
        ({"stop": 5}, "stop"),
        ({"stop": ["a", 5]}, "stop"),
        ({"stop": ["a", ""]}, "stop[1]"),
        ({"user": 5}, "user"),
        # vLLM's extensions, checked as the workers' HTTP API checks them (one validator).
        ({"min_tokens": -1}, "min_tokens"),
        ({"include_stop_str_in_output": True}, "include_stop_str_in_output"),
        ({"stop_token_ids": [5]}, "stop_token_ids"),
        ({"guided_json": {"type": "object"}}, "guided_json"),
    ],
)
@pytest.mark.asyncio
async def test_sampling_fields_of_a_wrong_type_or_unsupported_are_a_400(
    fronts: Fronts, fields: dict[str, Any], param: str
) -> None:
    got, message = await fronts.http_error(http_chat("user") | fields)
    assert got == param and message.startswith(f"{param}: ")


@pytest.mark.asyncio
async def test_both_fronts_refuse_too_many_stop_sequences_alike(fronts: Fronts) -> None:
    stops = ["a", "b", "c", "d", "e"]  # OpenAI takes at most 4
    param, http_message = await fronts.http_error(http_chat("user") | {"stop": stops})
    grpc_details = await fronts.grpc_error(
        grpc_chat("user").__class__(model=MODEL, prompt="hi", max_tokens=4, stop=stops)
    )
    assert param == "stop" and grpc_details == http_message


@pytest.mark.asyncio
async def test_stop_and_seed_reach_the_generator_from_both_fronts(fronts: Fronts) -> None:
    body = http_chat("user") | {"stop": "\n\n", "seed": 7, "top_p": 0.9}
    async with fronts.session.post(f"{fronts.http_url}/v1/chat/completions", json=body) as reply:
        assert reply.status == 200, await reply.text()
    request = router_pb2.GenerateRequest(
        model=MODEL, prompt="hi", max_tokens=4, stop=["\n\n"], seed=7
    )
    [r async for r in fronts.stub.Generate(request)]
    assert [(r.stop, r.seed) for r in fronts.generator.requests] == [(("\n\n",), 7)] * 2
