"""The OpenAI-compatible HTTP front over a fake Generator, on a real socket (127.0.0.1:0)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
import pytest
import pytest_asyncio
from aiohttp import web
from openai.types.chat import ChatCompletionMessageParam

from triskel.common.http_listener import HttpLimits, start_http_listener
from triskel.router.http_api import MAX_BODY_BYTES, build_http_app
from triskel.router.metrics import RouterMetrics
from triskel.router.types import (
    ImagePart,
    RequestBlocked,
    ServiceError,
    TextPart,
)

from support.cluster import local_cluster, small_config
from support.fake_generator import MODEL, FakeGenerator
from support.hostile_clients import (
    HUGE_PROMPT,
    SLOW_PROMPT,
    expect_a_stalled_body_answered_408,
    expect_an_unfinished_head_closed,
    expect_connections_beyond_the_cap_refused,
    expect_malformed_requests_refused_quietly,
    record_encoded_lengths,
    slowest_reply_s,
)
from support.local_workers import post_json

DEADLINE_S = 5.0


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Front:
    """The app on a real socket, as `process.py` runs it, with a client session."""

    runner: web.AppRunner
    session: aiohttp.ClientSession
    root_url: str
    generator: FakeGenerator
    metrics: RouterMetrics

    @property
    def port(self) -> int:
        return int(self.root_url.rsplit(":", 1)[1])

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def openai(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key="x", max_retries=0)

    async def post(
        self, path: str, body: bytes | dict[str, object], headers: Mapping[str, str] | None = None
    ) -> Reply:
        payload = {"data": body} if isinstance(body, bytes) else {"json": body}
        async with self.session.post(self.root_url + path, headers=headers, **payload) as response:
            return Reply(response.status, response.headers, await response.text())

    async def get(self, path: str) -> Reply:
        async with self.session.get(self.root_url + path) as response:
            return Reply(response.status, response.headers, await response.text())

    async def close(self) -> None:
        await self.session.close()
        await self.runner.cleanup()


async def start_front(generator: FakeGenerator, limits: HttpLimits | None = None) -> Front:
    metrics = RouterMetrics()
    runner, port = await start_http_listener(
        build_http_app(generator, metrics), "127.0.0.1", 0, limits or HttpLimits()
    )
    return Front(runner, aiohttp.ClientSession(), f"http://127.0.0.1:{port}", generator, metrics)


@pytest_asyncio.fixture
async def front() -> AsyncIterator[Front]:
    running = await start_front(FakeGenerator())
    yield running
    await running.close()


CHAT: dict[str, object] = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}


def sse_payloads(raw: str) -> list[str]:
    return [line[len("data: ") :] for line in raw.split("\n\n") if line.startswith("data: ")]


async def post_stream(front: Front, path: str, body: dict[str, object]) -> list[Any]:
    reply = await front.post(path, {**body, "stream": True})
    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/event-stream")
    payloads = sse_payloads(reply.text)
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


# --- happy paths ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_chat_completion_has_openai_shape_and_passes_headers(front: Front) -> None:
    reply = await front.post(
        "/v1/chat/completions",
        {**CHAT, "max_completion_tokens": 5, "temperature": 0.2, "ignore_eos": True},
        headers={"X-Request-Id": "abc-1", "X-Tenant": "blue", "Authorization": "Bearer secret"},
    )
    body = reply.json()
    assert reply.status == 200, body
    assert reply.headers["x-request-id"] == "abc-1"
    assert body["id"] == "chatcmpl-abc-1"
    assert body["object"] == "chat.completion"
    assert body["model"] == MODEL and isinstance(body["created"], int)
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello, world"},
            "logprobs": None,
            "finish_reason": "length",
        }
    ]
    assert body["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 3},
    }
    (seen,) = front.generator.requests
    assert seen.request_id == "abc-1" and seen.max_tokens == 5 and seen.ignore_eos
    assert seen.messages is not None and seen.messages[0].parts == (TextPart("Hi"),)
    # Lower-cased names; credentials are not passed on to routing policies.
    assert seen.headers["x-tenant"] == "blue"
    assert "authorization" not in seen.headers


@pytest.mark.asyncio
async def test_request_id_is_generated_when_absent(front: Front) -> None:
    reply = await front.post("/v1/chat/completions", CHAT)
    body = reply.json()
    request_id = reply.headers["x-request-id"]
    assert request_id and body["id"] == f"chatcmpl-{request_id}"
    assert front.generator.requests[0].request_id == request_id
    # No max_tokens: the generator caps it by the context window.
    assert front.generator.requests[0].max_tokens is None


@pytest.mark.asyncio
async def test_chat_image_parts_carry_url_and_size(front: Front) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://x/a.png", "width": 640, "height": 480}},
        {"type": "image_url", "image_url": {"url": "https://x/b.png", "detail": "low"}},
    ]
    body: dict[str, object] = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    reply = await front.post("/v1/chat/completions", body)
    assert reply.status == 200, reply.text
    messages = front.generator.requests[0].messages
    assert messages is not None
    # Absent sizes are 0: the encoder's default.
    assert messages[0].parts == (
        TextPart("What is this?"),
        ImagePart("https://x/a.png", 640, 480),
        ImagePart("https://x/b.png", 0, 0),
    )


@pytest.mark.asyncio
async def test_chat_stream_sends_role_deltas_finish_usage_and_done(front: Front) -> None:
    chunks = await post_stream(
        front, "/v1/chat/completions", {**CHAT, "stream_options": {"include_usage": True}}
    )
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    choices = [c["choices"] for c in chunks]
    # Role first, one delta per token event, then the finish reason, then usage alone.
    assert [ch[0]["delta"] for ch in choices[:-1]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": ","},
        {"content": " world"},
        {},
    ]
    assert [ch[0]["finish_reason"] for ch in choices[:-1]] == [None] * 4 + ["length"]
    assert choices[-1] == []
    assert chunks[-1]["usage"]["total_tokens"] == 10
    # With include_usage, OpenAI sends "usage": null on every other chunk.
    assert all(c["usage"] is None for c in chunks[:-1])


@pytest.mark.asyncio
async def test_stream_without_include_usage_has_no_usage(front: Front) -> None:
    chunks = await post_stream(front, "/v1/chat/completions", CHAT)
    assert all("usage" not in c and c["choices"] for c in chunks)


@pytest.mark.asyncio
async def test_completion_whole_and_streamed(front: Front) -> None:
    body: dict[str, object] = {
        "model": MODEL,
        "prompt": ["Once upon a time"],
    }  # a list of one string is fine
    reply = await front.post("/v1/completions", body)
    whole = reply.json()
    assert reply.status == 200, whole
    assert whole["object"] == "text_completion" and whole["id"].startswith("cmpl-")
    assert whole["choices"][0]["text"] == "Hello, world"
    assert whole["choices"][0]["finish_reason"] == "length"
    # OpenAI's default for completions when max_tokens is omitted.
    assert front.generator.requests[0].max_tokens == 16
    assert front.generator.requests[0].prompt == "Once upon a time"

    chunks = await post_stream(front, "/v1/completions", {**body, "max_tokens": 3})
    texts = [c["choices"][0]["text"] for c in chunks]
    # No role chunk for text completions: deltas, then an empty text with the reason.
    assert texts == ["Hello", ",", " world", ""]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert {c["object"] for c in chunks} == {"text_completion"}


@pytest.mark.asyncio
async def test_models_health_and_metrics(front: Front) -> None:
    models = (await front.get("/v1/models")).json()
    assert models["object"] == "list"
    (card,) = models["data"]
    assert card["id"] == MODEL and card["object"] == "model"
    assert card["owned_by"] == "triskel" and card["max_model_len"] == 4096
    assert isinstance(card["created"], int)
    assert (await front.get("/health")).json() == {"status": "ok"}

    await front.post("/v1/chat/completions", CHAT)
    await front.post("/v1/chat/completions", {**CHAT, "max_tokens": 0})
    reply = await front.get("/metrics")
    text = reply.text
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert 'triskel_requests_total{front="http",model="m",status="ok"} 1.0' in text
    assert 'triskel_requests_total{front="http",model="m",status="client_error"} 1.0' in text
    assert 'triskel_generation_tokens_total{model="m"} 3.0' in text
    assert 'triskel_inflight_requests{model="m"} 0.0' in text


# --- bad input ----------------------------------------------------------------------


def with_message(message: object) -> dict[str, object]:
    return {"model": MODEL, "messages": [message]}


def with_part(part: object) -> dict[str, object]:
    return with_message({"role": "user", "content": [part]})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),  # JSON, but not an object
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({**CHAT, "model": 7}, "model"),
        ({"model": MODEL}, "messages"),
        ({"model": MODEL, "messages": []}, "messages"),
        ({"model": MODEL, "messages": "hi"}, "messages"),
        (with_message("hi"), "messages[0]"),
        (with_message({"content": "x"}), "messages[0].role"),
        (with_message({"role": "robot", "content": "x"}), "messages[0].role"),
        (with_message({"role": "user"}), "messages[0].content"),
        (with_message({"role": "user", "content": 5}), "messages[0].content"),
        (with_message({"role": "user", "content": []}), "messages[0].content"),
        (with_part({"type": "input_audio", "input_audio": {}}), "messages[0].content[0].type"),
        (with_part({"type": "text"}), "messages[0].content[0].text"),
        (
            with_part({"type": "image_url", "image_url": "https://x"}),
            "messages[0].content[0].image_url",
        ),
        (with_part({"type": "image_url", "image_url": {}}), "messages[0].content[0].image_url.url"),
        (
            with_part({"type": "image_url", "image_url": {"url": "u", "width": 0}}),
            "messages[0].content[0].image_url.width",
        ),
        (
            with_part({"type": "image_url", "image_url": {"url": "u", "height": 10**6}}),
            "messages[0].content[0].image_url.height",
        ),
        ({**CHAT, "max_tokens": 0}, "max_tokens"),
        ({**CHAT, "max_tokens": -3}, "max_tokens"),
        ({**CHAT, "max_tokens": "10"}, "max_tokens"),
        ({**CHAT, "max_tokens": 2.5}, "max_tokens"),
        ({**CHAT, "max_tokens": True}, "max_tokens"),  # JSON true is not the integer 1
        ({**CHAT, "max_completion_tokens": 0}, "max_completion_tokens"),
        ({**CHAT, "max_tokens": 5, "max_completion_tokens": 6}, "max_completion_tokens"),
        ({**CHAT, "n": 2}, "n"),
        ({**CHAT, "logprobs": True}, "logprobs"),
        ({**CHAT, "stream": "yes"}, "stream"),
        ({**CHAT, "stream_options": {"include_usage": True}}, "stream_options"),  # no stream
        ({**CHAT, "stream": True, "stream_options": []}, "stream_options"),
        (
            {**CHAT, "stream": True, "stream_options": {"include_usage": 1}},
            "stream_options.include_usage",
        ),
        ({**CHAT, "ignore_eos": "no"}, "ignore_eos"),
        ({**CHAT, "model": "nope"}, "model"),  # the generator's RequestError, mapped
    ],
)
@pytest.mark.asyncio
async def test_bad_chat_input_is_a_400_naming_the_field(
    front: Front, body: bytes | dict[str, object], param: str
) -> None:
    await assert_bad_request(front, "/v1/chat/completions", body, param)


@pytest.mark.parametrize(
    "prompt",
    # OpenAI's two token-id forms: a list of ids, and a batch of one such list.
    [[5, 0, 128000], [[5, 0, 128000]]],
)
@pytest.mark.asyncio
async def test_completion_takes_token_ids_as_they_are(front: Front, prompt: object) -> None:
    reply = await front.post("/v1/completions", {"model": MODEL, "prompt": prompt})
    assert reply.status == 200, reply.text
    (seen,) = front.generator.requests
    assert seen.prompt_token_ids == (5, 0, 128000) and seen.prompt is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MODEL}, "prompt"),
        ({"model": MODEL, "prompt": ""}, "prompt"),
        ({"model": MODEL, "prompt": ["a", "b"]}, "prompt"),  # a batch: not supported
        ({"model": MODEL, "prompt": [[1], [2]]}, "prompt"),
        ({"model": MODEL, "prompt": []}, "prompt"),
        ({"model": MODEL, "prompt": [[]]}, "prompt[0]"),
        # Token ids are integers >= 0; the position names the bad one.
        ({"model": MODEL, "prompt": [1, -2]}, "prompt[1]"),
        ({"model": MODEL, "prompt": [1, 2.5]}, "prompt[1]"),
        ({"model": MODEL, "prompt": [True]}, "prompt[0]"),
        ({"model": MODEL, "prompt": [[7, "a"]]}, "prompt[0][1]"),
        ({"model": MODEL, "prompt": "x", "max_tokens": 0}, "max_tokens"),
        ({"model": MODEL, "prompt": "x", "n": 3}, "n"),
        ({"model": MODEL, "prompt": "x", "echo": True}, "echo"),
        ({"model": MODEL, "prompt": "x", "logprobs": 2}, "logprobs"),
        ({"model": MODEL, "prompt": "x", "best_of": 2}, "best_of"),
        ({"model": "", "prompt": "x"}, "model"),
    ],
)
@pytest.mark.asyncio
async def test_bad_completion_input_is_a_400_naming_the_field(
    front: Front, body: dict[str, object], param: str
) -> None:
    await assert_bad_request(front, "/v1/completions", body, param)


@pytest.mark.parametrize("request_id", ["x" * 129, "tab\there", "é"])
@pytest.mark.asyncio
async def test_bad_request_id_header_is_rejected_and_not_echoed(
    front: Front, request_id: str
) -> None:
    reply = await front.post("/v1/chat/completions", CHAT, headers={"x-request-id": request_id})
    body = reply.json()
    assert reply.status == 400
    assert body["error"]["param"] == "x-request-id" and "x-request-id" in body["error"]["message"]
    assert reply.headers["x-request-id"] != request_id


@pytest.mark.asyncio
async def test_body_over_the_size_limit_is_a_400_naming_the_limit(front: Front) -> None:
    reply = await front.post("/v1/chat/completions", b" " * (MAX_BODY_BYTES + 1))
    assert reply.status == 400
    error = reply.json()["error"]
    assert error["param"] == "body" and str(MAX_BODY_BYTES) in error["message"]


async def assert_bad_request(
    front: Front, path: str, body: bytes | dict[str, object], param: str
) -> None:
    reply = await front.post(path, body)
    assert reply.status == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] is None
    assert error["param"] == param
    assert param in error["message"]
    assert "Traceback" not in error["message"]


# --- failures from the generator ----------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.asyncio
async def test_a_blocking_routing_decision_is_a_403_naming_it(stream: bool) -> None:
    generator = FakeGenerator(error=RequestBlocked("no_pii", "no personal data to model x"))
    running = await start_front(generator)
    try:
        reply = await running.post("/v1/chat/completions", {**CHAT, "stream": stream})
    finally:
        await running.close()
    assert reply.status == 403
    error = reply.json()["error"]
    assert error["type"] == "permission_denied"
    assert error["message"] == ("refused by routing decision 'no_pii': no personal data to model x")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.asyncio
async def test_service_error_before_the_first_token_is_a_503_with_retry_after(
    stream: bool,
) -> None:
    generator = FakeGenerator(error=ServiceError("no decode worker for m", retry_after_s=1.5))
    running = await start_front(generator)
    try:
        reply = await running.post("/v1/chat/completions", {**CHAT, "stream": stream})
    finally:
        await running.close()
    assert reply.status == 503
    # Retry-After takes whole seconds, rounded up so the client never retries early.
    assert reply.headers["Retry-After"] == "2"
    error = reply.json()["error"]
    assert error["type"] == "service_unavailable" and error["code"] == 503
    assert "no decode worker for m" in error["message"]


@pytest.mark.asyncio
async def test_service_error_mid_stream_ends_with_an_error_event_then_done() -> None:
    generator = FakeGenerator(error=ServiceError("decode worker w2 failed"), fail_at=2)
    running = await start_front(generator)
    try:
        reply = await running.post("/v1/chat/completions", {**CHAT, "stream": True})
        payloads = sse_payloads(reply.text)
        non_stream = await running.post("/v1/chat/completions", CHAT)
    finally:
        await running.close()
    assert reply.status == 200
    assert payloads[-1] == "[DONE]"
    events = [json.loads(p) for p in payloads[:-1]]
    # role + two tokens made it out, then a clear error, never a silent truncation.
    assert [e["choices"][0]["delta"] for e in events[:3]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": ","},
    ]
    assert events[3]["error"]["type"] == "service_unavailable"
    assert events[3]["error"]["code"] == 503
    assert "decode worker w2 failed" in events[3]["error"]["message"]
    # Not streamed: nothing was sent yet, so a plain 503.
    assert non_stream.status == 503
    assert 'status="service_error"' in running.metrics.render()[0].decode()


@pytest.mark.asyncio
async def test_tokens_whose_finish_follows_are_sent_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The stream reads the same either way; the last tokens only leave in the finish's
    # write (write_eof) instead of a write of their own.
    writes: list[bytes] = []
    original = web.StreamResponse.write

    async def counted(self: web.StreamResponse, data: bytes) -> None:
        writes.append(bytes(data))
        await original(self, data)

    monkeypatch.setattr(web.StreamResponse, "write", counted)
    replies: dict[bool, list[str]] = {}
    num_writes: dict[bool, int] = {}
    for finish_follows in (False, True):
        writes.clear()
        running = await start_front(FakeGenerator(finish_follows=finish_follows))
        try:
            reply = await running.post("/v1/chat/completions", {**CHAT, "stream": True})
        finally:
            await running.close()
        assert reply.status == 200
        replies[finish_follows] = [
            json.dumps(json.loads(p)["choices"]) if p != "[DONE]" else p
            for p in sse_payloads(reply.text)
        ]
        num_writes[finish_follows] = len(writes)
    assert replies[True] == replies[False]
    assert replies[True][-1] == "[DONE]"
    assert num_writes == {False: 3, True: 2}  # "Hello", "," alone; " world" with the end


@pytest.mark.asyncio
async def test_held_tokens_go_out_before_an_error_that_follows_them() -> None:
    # The hint was wrong (the worker failed instead of finishing): nothing is lost.
    generator = FakeGenerator(
        error=ServiceError("decode worker w2 failed"), fail_at=3, finish_follows=True
    )
    running = await start_front(generator)
    try:
        reply = await running.post("/v1/chat/completions", {**CHAT, "stream": True})
    finally:
        await running.close()
    payloads = sse_payloads(reply.text)
    events = [json.loads(p) for p in payloads[:-1]]
    assert [e["choices"][0]["delta"] for e in events[:4]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": ","},
        {"content": " world"},
    ]
    assert events[4]["error"]["type"] == "service_unavailable"
    assert payloads[-1] == "[DONE]"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.asyncio
async def test_unexpected_error_is_a_generic_500(stream: bool) -> None:
    running = await start_front(FakeGenerator(error=KeyError("secret internals")))
    try:
        reply = await running.post(
            "/v1/completions", {"model": MODEL, "prompt": "x", "stream": stream}
        )
    finally:
        await running.close()
    assert reply.status == 500
    error = reply.json()["error"]
    assert error["type"] == "internal_error" and error["code"] == 500
    assert "secret internals" not in error["message"]
    assert reply.headers["x-request-id"] in error["message"]


@pytest.mark.asyncio
async def test_client_leaving_mid_stream_closes_the_generator() -> None:
    running = await start_front(FakeGenerator(endless=True))
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{running.base_url}/chat/completions", json={**CHAT, "stream": True}
            ) as response,
        ):
            assert response.status == 200
            await response.content.readline()  # the stream is flowing
        # The session is closed: the next write fails and the front closes the generator.
        await asyncio.wait_for(running.generator.closed_early.wait(), DEADLINE_S)
        # The front records the request before it closes the generator.
        assert 'status="cancelled"' in running.metrics.render()[0].decode()
    finally:
        await running.close()


@pytest.mark.asyncio
async def test_client_leaving_while_waiting_closes_the_generator() -> None:
    running = await start_front(FakeGenerator(hang=True))
    try:
        post = asyncio.create_task(running.post("/v1/chat/completions", CHAT))
        await asyncio.wait_for(running.generator.started.wait(), DEADLINE_S)
        post.cancel()  # drops the connection while the generator still waits
        with contextlib.suppress(asyncio.CancelledError):
            await post
        await asyncio.wait_for(running.generator.closed_early.wait(), DEADLINE_S)
        # The front records the request before it closes the generator.
        assert 'status="cancelled"' in running.metrics.render()[0].decode()
    finally:
        await running.close()


# --- the official openai client ----------------------------------------------------


@pytest.mark.asyncio
async def test_openai_client_chat_whole_and_streamed(front: Front) -> None:
    client = front.openai()
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]
    completion = await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=3)
    assert completion.choices[0].message.content == "Hello, world"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.total_tokens == 10
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 3

    stream = await client.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    text, usage_tokens = "", 0
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        elif chunk.usage is not None:
            usage_tokens = chunk.usage.completion_tokens
    assert (text, usage_tokens) == ("Hello, world", 3)
    await client.close()


@pytest.mark.asyncio
async def test_openai_client_completions_whole_and_streamed(front: Front) -> None:
    client = front.openai()
    completion = await client.completions.create(model=MODEL, prompt="Once", max_tokens=3)
    assert completion.choices[0].text == "Hello, world"
    stream = await client.completions.create(model=MODEL, prompt="Once", max_tokens=3, stream=True)
    pieces = [chunk.choices[0].text async for chunk in stream]
    assert "".join(pieces) == "Hello, world"
    await client.close()


@pytest.mark.asyncio
async def test_openai_client_sees_errors_as_api_errors(front: Front) -> None:
    client = front.openai()
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "Hi"}]
        )
    assert bad.value.param == "model"
    models = await client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    await client.close()


@pytest.mark.asyncio
async def test_openai_client_raises_on_a_mid_stream_error() -> None:
    running = await start_front(FakeGenerator(error=ServiceError("worker lost"), fail_at=1))
    client = running.openai()
    try:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        with pytest.raises(openai.APIError, match="worker lost"):
            async for _ in stream:
                pass
    finally:
        await client.close()
        await running.close()


# --- long prompts, through the real request path ----------------------------------

LONG_PROMPT_MODEL = "llama-3.1-8b"
# A 131,072-token context window: no text over 131,071 × 8 characters fits (the mock
# tokenizer's longest token is 8 characters, " between").
LONG_PROMPT_UP = f"""
pools:
  - name: unified
    role: unified
    model: {LONG_PROMPT_MODEL}
    profile: {{name: llama-3.1-8b-h100, timeScale: 0.01}}
"""


@pytest.mark.asyncio
async def test_a_prompt_too_long_to_fit_is_refused_by_its_length_before_tokenizing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded_lengths = record_encoded_lengths(monkeypatch)
    async with local_cluster(small_config(LONG_PROMPT_UP)) as cluster:
        body = {"model": LONG_PROMPT_MODEL, "prompt": HUGE_PROMPT, "max_tokens": 4}
        status, reply = await post_json(f"{cluster.http_url}/v1/completions", body)
    assert status == 400
    assert reply["error"]["param"] == "prompt"
    assert "is 24000000 characters" in reply["error"]["message"]
    assert "no text over 1048568 characters" in reply["error"]["message"]
    assert max(encoded_lengths, default=0) < 100  # chat markers at most, never the prompt


@pytest.mark.asyncio
async def test_health_answers_while_a_long_prompt_is_tokenized() -> None:
    async with local_cluster(small_config(LONG_PROMPT_UP)) as cluster:
        body = {"model": LONG_PROMPT_MODEL, "prompt": SLOW_PROMPT, "max_tokens": 4}
        completion = post_json(f"{cluster.http_url}/v1/completions", body)
        slowest_s, (status, reply) = await slowest_reply_s(f"{cluster.http_url}/health", completion)
    # Tokenized in full (it passes the length bound), then refused for its token count.
    assert status == 400 and "is 1000000 tokens" in reply["error"]["message"]
    assert slowest_s < 0.2


# --- slow and greedy clients (the test's limits are short; the defaults are seconds) ------

SHORT_LIMITS = HttpLimits(header_timeout_s=0.3, body_idle_timeout_s=0.3, max_connections=3)


@pytest.mark.asyncio
async def test_a_request_head_that_never_ends_is_closed_after_the_header_timeout() -> None:
    running = await start_front(FakeGenerator(), SHORT_LIMITS)
    try:
        await expect_an_unfinished_head_closed(running.port, within_s=1.0)
    finally:
        await running.close()


@pytest.mark.asyncio
async def test_a_body_shorter_than_its_content_length_is_a_408_after_the_body_timeout() -> None:
    running = await start_front(FakeGenerator(), SHORT_LIMITS)
    try:
        await expect_a_stalled_body_answered_408(running.port, 0.3, within_s=1.0)
    finally:
        await running.close()


@pytest.mark.asyncio
async def test_connections_beyond_the_cap_are_refused_while_open_ones_are_served() -> None:
    running = await start_front(FakeGenerator(), HttpLimits(max_connections=3))
    try:
        await expect_connections_beyond_the_cap_refused(running.port, 3)
    finally:
        await running.close()


@pytest.mark.asyncio
async def test_malformed_requests_are_400s_with_one_log_line_at_most(
    front: Front, caplog: pytest.LogCaptureFixture
) -> None:
    await expect_malformed_requests_refused_quietly(front.port, caplog)
