"""The gRPC front over a fake Generator: a real grpc.aio server on 127.0.0.1:0, a real channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from triskel.router.grpc_api import RouterServicer, start_grpc_server
from triskel.router.metrics import RouterMetrics
from triskel.router.types import (
    ImagePart,
    ServiceError,
    TextPart,
)
from triskel.v1 import router_pb2, router_pb2_grpc

from support.fake_generator import MODEL, FakeGenerator

DEADLINE_S = 5.0


@dataclass
class Running:
    server: grpc.aio.Server
    channel: grpc.aio.Channel
    stub: router_pb2_grpc.RouterStub
    generator: FakeGenerator
    metrics: RouterMetrics

    async def close(self) -> None:
        await self.channel.close()
        await self.server.stop(None)


async def start(generator: FakeGenerator) -> Running:
    metrics = RouterMetrics()
    server, port = await start_grpc_server(RouterServicer(generator, metrics), "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = router_pb2_grpc.RouterStub(channel)
    return Running(server, channel, stub, generator, metrics)


@pytest_asyncio.fixture
async def running() -> AsyncIterator[Running]:
    front = await start(FakeGenerator(finish_reason="stop", first_token_id=100))
    yield front
    await front.close()


def prompt_request(**fields: Any) -> router_pb2.GenerateRequest:
    defaults: dict[str, Any] = {"model": MODEL, "prompt": "Hi", "max_tokens": 8}
    return router_pb2.GenerateRequest(**(defaults | fields))


def chat(*messages: router_pb2.ChatMessage) -> router_pb2.ChatMessages:
    return router_pb2.ChatMessages(messages=messages)


def text(value: str) -> router_pb2.ContentPart:
    return router_pb2.ContentPart(text=value)


async def generate(
    stub: router_pb2_grpc.RouterStub,
    request: router_pb2.GenerateRequest,
    metadata: tuple[tuple[str, str], ...] = (),
) -> list[router_pb2.GenerateResponse]:
    return [response async for response in stub.Generate(request, metadata=metadata)]


@pytest.mark.asyncio
async def test_generate_streams_chunks_then_finished(running: Running) -> None:
    responses = await generate(
        running.stub,
        prompt_request(request_id="r-1", ignore_eos=True),
        metadata=(("x-tenant", "blue"), ("authorization", "Bearer secret")),
    )
    assert [r.WhichOneof("event") for r in responses] == ["chunk"] * 3 + ["finished"]
    assert [r.chunk.text for r in responses[:3]] == ["Hello", ",", " world"]
    assert list(responses[0].chunk.token_ids) == [100]
    finished = responses[-1].finished
    assert finished.finish_reason == "stop" and finished.request_id == "r-1"
    assert (finished.usage.prompt_tokens, finished.usage.completion_tokens) == (7, 3)
    assert finished.usage.cached_prompt_tokens == 3
    (seen,) = running.generator.requests
    assert (seen.request_id, seen.prompt, seen.max_tokens, seen.ignore_eos) == (
        "r-1",
        "Hi",
        8,
        True,
    )
    # Metadata is passed on as headers, credentials are not.
    assert seen.headers["x-tenant"] == "blue" and "authorization" not in seen.headers
    body = running.metrics.render()[0].decode()
    assert 'triskel_requests_total{front="grpc",model="m",status="ok"} 1.0' in body


@pytest.mark.asyncio
async def test_chat_with_an_image_and_a_generated_request_id(running: Running) -> None:
    image = router_pb2.ImagePart(url="https://x/a.png", width_px=640, height_px=480)
    message = router_pb2.ChatMessage(
        role="user", content=[text("What is it?"), router_pb2.ContentPart(image=image)]
    )
    request = router_pb2.GenerateRequest(model=MODEL, chat=chat(message), max_tokens=4)
    responses = await generate(running.stub, request)
    (seen,) = running.generator.requests
    assert seen.prompt is None and seen.messages is not None
    assert seen.messages[0].role == "user"
    assert seen.messages[0].parts == (
        TextPart("What is it?"),
        ImagePart("https://x/a.png", 640, 480),
    )
    # An empty request_id means "make one", and the Finished message tells it.
    assert seen.request_id and responses[-1].finished.request_id == seen.request_id


@pytest.mark.asyncio
async def test_token_id_prompt_is_passed_on_as_it_is(running: Running) -> None:
    ids = router_pb2.TokenIds(ids=[5, 0, 128000])
    request = router_pb2.GenerateRequest(model=MODEL, prompt_token_ids=ids, max_tokens=4)
    await generate(running.stub, request)
    (seen,) = running.generator.requests
    assert seen.prompt_token_ids == (5, 0, 128000)
    assert seen.prompt is None and seen.messages is None


@pytest.mark.parametrize(
    ("bad_request", "field_name"),
    [
        (router_pb2.GenerateRequest(prompt="Hi", max_tokens=8), "model"),
        (
            router_pb2.GenerateRequest(
                model=MODEL, prompt_token_ids=router_pb2.TokenIds(), max_tokens=8
            ),
            "prompt_token_ids.ids",
        ),
        (router_pb2.GenerateRequest(model=MODEL, max_tokens=8), "input"),  # neither input
        # proto3 cannot tell 0 from unset, so max_tokens is required.
        (prompt_request(max_tokens=0), "max_tokens"),
        (prompt_request(prompt=""), "prompt"),
        (prompt_request(request_id="x" * 129), "request_id"),
        (router_pb2.GenerateRequest(model=MODEL, chat=chat(), max_tokens=8), "chat.messages"),
        (
            router_pb2.GenerateRequest(
                model=MODEL,
                chat=chat(router_pb2.ChatMessage(role="robot", content=[text("x")])),
                max_tokens=8,
            ),
            "chat.messages[0].role",
        ),
        (
            router_pb2.GenerateRequest(
                model=MODEL, chat=chat(router_pb2.ChatMessage(role="user")), max_tokens=8
            ),
            "chat.messages[0].content",
        ),
        (
            router_pb2.GenerateRequest(
                model=MODEL,
                chat=chat(
                    router_pb2.ChatMessage(role="user", content=[text("x")]),
                    router_pb2.ChatMessage(role="user", content=[router_pb2.ContentPart()]),
                ),
                max_tokens=8,
            ),
            "chat.messages[1].content[0]",
        ),
        (
            router_pb2.GenerateRequest(
                model=MODEL,
                chat=chat(
                    router_pb2.ChatMessage(
                        role="user",
                        content=[router_pb2.ContentPart(image=router_pb2.ImagePart(width_px=9))],
                    )
                ),
                max_tokens=8,
            ),
            "chat.messages[0].content[0].image.url",
        ),
        (prompt_request(model="nope"), "model"),  # the generator's RequestError, mapped
    ],
)
@pytest.mark.asyncio
async def test_bad_requests_are_invalid_argument_naming_the_field(
    running: Running, bad_request: router_pb2.GenerateRequest, field_name: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await generate(running.stub, bad_request)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.value.details().startswith(f"{field_name}: ")
    body = running.metrics.render()[0].decode()
    assert 'front="grpc"' in body and 'status="client_error"} 1.0' in body


@pytest.mark.parametrize(
    ("error", "fail_at", "code", "num_chunks"),
    [
        # Before the first token and mid-stream alike: the stream ends with the status.
        (ServiceError("no decode worker for m"), 0, grpc.StatusCode.UNAVAILABLE, 0),
        (ServiceError("decode worker w2 failed"), 2, grpc.StatusCode.UNAVAILABLE, 2),
        (KeyError("secret internals"), 1, grpc.StatusCode.INTERNAL, 1),
    ],
)
@pytest.mark.asyncio
async def test_failures_end_the_stream_with_a_status(
    error: Exception, fail_at: int, code: grpc.StatusCode, num_chunks: int
) -> None:
    front = await start(FakeGenerator(error=error, fail_at=fail_at))
    chunks: list[router_pb2.GenerateResponse] = []
    try:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            async for response in front.stub.Generate(prompt_request(request_id="r-9")):
                chunks.append(response)
    finally:
        await front.close()
    assert failure.value.code() == code
    assert len(chunks) == num_chunks
    if isinstance(error, ServiceError):
        assert str(error) in failure.value.details()
    else:
        # Our own bugs stay in the router's log; the client gets where to look.
        assert "secret internals" not in failure.value.details()
        assert "r-9" in failure.value.details()


@pytest.mark.asyncio
async def test_client_cancel_closes_the_generator() -> None:
    front = await start(FakeGenerator(endless=True))
    try:
        call = front.stub.Generate(prompt_request())
        first = await call.read()
        assert first.chunk.text == "Hello"
        call.cancel()
        await asyncio.wait_for(front.generator.closed_early.wait(), DEADLINE_S)
    finally:
        await front.close()
    assert 'status="cancelled"} 1.0' in front.metrics.render()[0].decode()


@pytest.mark.asyncio
async def test_list_models(running: Running) -> None:
    reply = await running.stub.ListModels(router_pb2.ListModelsRequest())
    assert [(m.name, m.max_context_tokens) for m in reply.models] == [(MODEL, 4096)]


@pytest.mark.parametrize("service", ["", "triskel.v1.Router"])
@pytest.mark.asyncio
async def test_health_reports_serving(running: Running, service: str) -> None:
    stub = health_pb2_grpc.HealthStub(running.channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.asyncio
async def test_reflection_lists_the_router_service(running: Running) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = [r async for r in stub.ServerReflectionInfo(iter([request]))]
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"triskel.v1.Router", "grpc.health.v1.Health"} <= names
