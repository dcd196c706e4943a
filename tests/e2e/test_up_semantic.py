"""`triskel up` on its built-in defaults: `model: auto` picks the model, the cache answers
repeats. What the README's demo shows, as a user runs it."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio

from triskel.v1 import router_pb2, router_pb2_grpc

from support.processes import read_until, start_triskel

PYTHON_QUESTION = "How do I reverse a list in Python?"
INTEGRAL = "What is the integral of x^2 sin(x) dx?"


class Up:
    def __init__(self, http: str, grpc_address: str) -> None:
        self.http, self.grpc_address = http, grpc_address

    async def chat(
        self, content: str, model: str = "auto", **fields: Any
    ) -> tuple[dict[str, str], dict[str, Any]]:
        body = {"model": model, "messages": [{"role": "user", "content": content}]}
        body |= {"temperature": 0, "max_tokens": 12} | fields
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://{self.http}/v1/chat/completions", json=body) as response,
        ):
            assert response.status == 200, await response.text()
            headers = {k.lower(): v for k, v in response.headers.items()}
            return headers, await response.json()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def up() -> AsyncIterator[Up]:
    process = await start_triskel(["up", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0"])
    try:
        ready = (await read_until(process, "Triskel is ready", timeout_s=90))[-1]
        http = re.search(r"http://(127\.0\.0\.1:\d+)/v1", ready)
        grpc_address = re.search(r"grpc (127\.0\.0\.1:\d+)", ready)
        assert http and grpc_address, ready
        yield Up(http.group(1), grpc_address.group(1))
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)


def decided(headers: dict[str, str]) -> tuple[str, str, str, str]:
    return (
        headers["x-triskel-model"],
        headers["x-triskel-decision"],
        headers["x-triskel-cache"],
        headers.get("x-triskel-reasoning", ""),
    )


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_auto_picks_a_model_per_request_and_repeats_come_from_the_cache(up: Up) -> None:
    headers, python = await up.chat(PYTHON_QUESTION)
    assert decided(headers) == ("llama-3.1-8b", "code", "miss", "off")
    assert python["model"] == "llama-3.1-8b"
    # The same prompt sent to the small model by name (with the decision's reasoning
    # switch) gets the same tokens: the small model answered, not the large one.
    _, direct = await up.chat(
        PYTHON_QUESTION, model="llama-3.1-8b", chat_template_kwargs={"enable_thinking": False}
    )
    text = python["choices"][0]["message"]["content"]
    assert direct["choices"][0]["message"]["content"] == text

    headers, integral = await up.chat(INTEGRAL)
    assert decided(headers) == ("qwen2.5-32b", "math", "miss", "on")
    assert integral["model"] == "qwen2.5-32b"

    headers, again = await eventually_hit(up, PYTHON_QUESTION)
    assert again["choices"][0]["message"]["content"] == text
    usage = again["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == usage["prompt_tokens"] > 0


async def eventually_hit(up: Up, content: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The answer is stored just after it is sent: ask until the store has landed."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        headers, body = await up.chat(content)
        if headers["x-triskel-cache"] == "hit" or asyncio.get_running_loop().time() > deadline:
            assert headers["x-triskel-cache"] == "hit", headers
            return headers, body
        await asyncio.sleep(0.05)


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_a_hit_replays_as_a_stream_and_grpc_carries_the_decision(up: Up) -> None:
    question = "Write a Python function that checks whether a string is a palindrome."
    await up.chat(question)
    await eventually_hit(up, question)
    body = {
        "model": "auto",
        "temperature": 0,
        "max_tokens": 12,
        "stream": True,
        "messages": [{"role": "user", "content": question}],
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://{up.http}/v1/chat/completions", json=body) as response,
    ):
        assert response.headers["x-triskel-cache"] == "hit"
        events = (await response.text()).split("\n\n")
    assert events[-2] == "data: [DONE]"
    assert sum('"content"' in event for event in events) >= 2

    async with grpc.aio.insecure_channel(up.grpc_address) as channel:
        call = router_pb2_grpc.RouterStub(channel).Generate(
            router_pb2.GenerateRequest(model="auto", prompt=INTEGRAL, max_tokens=4), timeout=30
        )
        metadata = dict(await call.initial_metadata())
        replies = [reply async for reply in call]
    assert metadata["x-triskel-model"] == "qwen2.5-32b"
    assert metadata["x-triskel-decision"] == "math"
    assert replies[-1].HasField("finished")


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_models_lists_the_alias_and_an_unknown_model_is_a_400(up: Up) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{up.http}/v1/models") as response,
    ):
        names = [model["id"] for model in (await response.json())["data"]]
    assert names == ["llama-3.1-8b", "qwen2.5-32b", "auto"]
    body = {"model": "autoo", "messages": [{"role": "user", "content": "hi"}]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://{up.http}/v1/chat/completions", json=body) as response,
    ):
        assert response.status == 400
        message = (await response.json())["error"]["message"]
    assert message.endswith("unknown model 'autoo'; served: llama-3.1-8b, qwen2.5-32b, auto")
