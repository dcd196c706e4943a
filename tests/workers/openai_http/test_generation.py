"""The completion endpoints through the official `openai` client against a real unified
mock worker, its 400s, and what happens when a stream breaks or its client leaves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest
import pytest_asyncio

from triskel.common.api import Role
from triskel.common.tokenizer import MockTokenizer, render_chat
from triskel.workers.api import DecodeParams, EngineFailure, Tokens
from triskel.workers.openai_http.server import start_worker_http_api

from support.engines import mock_engine
from support.hostile_clients import (
    HUGE_PROMPT,
    SLOW_PROMPT,
    record_encoded_lengths,
    slowest_reply_s,
)
from support.local_workers import (
    LocalWorker,
    local_worker,
    mock_pool,
    post_json,
    scrape,
    wait_for_metric,
    worker_metric,
)

PROMPT = "The river runs under the old stone bridge"
MESSAGES: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Name a river."},
]
# What smg adds to every chat request: the mock has no use for them, so they are ignored.
SGLANG_EXTRAS = {
    "ignore_eos": True,
    "skip_special_tokens": True,
    "no_stop_trim": True,
    "separate_reasoning": True,
}
TOKENIZER = MockTokenizer()
RUNNING = worker_metric("vllm:num_requests_running")


@pytest_asyncio.fixture
async def worker() -> AsyncIterator[LocalWorker]:
    async with local_worker(mock_pool("unified"), http_address="127.0.0.1:0") as started:
        yield started


@pytest_asyncio.fixture
async def client(worker: LocalWorker) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{worker.http_url}/v1", api_key="unused", max_retries=0
    ) as started:
        yield started


@pytest.mark.asyncio
async def test_completions_whole_and_streamed_agree(client: openai.AsyncOpenAI) -> None:
    whole = await client.completions.create(
        model="m", prompt=PROMPT, max_tokens=8, extra_body={"ignore_eos": True}
    )
    assert whole.usage is not None
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (
        len(TOKENIZER.encode(PROMPT)),
        8,
    )
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + 8
    assert whole.usage.prompt_tokens_details is not None
    assert whole.choices[0].finish_reason == "length"
    stream = await client.completions.create(
        model="m",
        prompt=PROMPT,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8


@pytest.mark.asyncio
async def test_chat_whole_and_streamed_agree(client: openai.AsyncOpenAI) -> None:
    whole = await client.chat.completions.create(
        model="m", messages=MESSAGES, max_completion_tokens=6, extra_body=SGLANG_EXTRAS
    )
    prompt_ids = TOKENIZER.encode(render_chat([(m["role"], m["content"]) for m in MESSAGES]))
    assert whole.usage is not None
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (len(prompt_ids), 6)
    assert whole.choices[0].message.role == "assistant"
    stream = await client.chat.completions.create(
        model="m",
        messages=MESSAGES,
        max_completion_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=SGLANG_EXTRAS,
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


@pytest.mark.asyncio
async def test_token_ids_and_text_of_the_same_prompt_give_the_same_output(
    client: openai.AsyncOpenAI,
) -> None:
    by_text = await client.completions.create(model="m", prompt=PROMPT, max_tokens=5)
    by_ids = await client.completions.create(
        model="m", prompt=TOKENIZER.encode(PROMPT), max_tokens=5
    )
    assert by_text.choices[0].text == by_ids.choices[0].text


@pytest.mark.asyncio
async def test_return_token_ids_gives_each_choice_the_ids_of_its_text(worker: LocalWorker) -> None:
    # vLLM >= 0.10.2's field: routers count generated tokens with it.
    body = {"model": "m", "prompt": PROMPT, "max_tokens": 4, "return_token_ids": True}
    status, whole = await post_json(f"{worker.http_url}/v1/completions", body)
    assert status == 200, whole
    choice = whole["choices"][0]
    assert len(choice["token_ids"]) == 4
    assert TOKENIZER.decode(choice["token_ids"]) == choice["text"]
    streamed_ids: list[int] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{worker.http_url}/v1/completions", json={**body, "stream": True}) as reply,
    ):
        async for line in reply.content:
            if line.startswith(b"data: {"):
                chunk = orjson.loads(line[6:])
                streamed_ids += chunk["choices"][0].get("token_ids", [])
    assert streamed_ids == choice["token_ids"]


@pytest.mark.asyncio
async def test_completions_default_to_16_tokens(client: openai.AsyncOpenAI) -> None:
    # vLLM's default without max_tokens; ignore_eos so the prompt's natural end (>= 16) is moot.
    reply = await client.completions.create(
        model="m", prompt=PROMPT, extra_body={"ignore_eos": True}
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 16


@pytest.mark.asyncio
async def test_the_client_request_id_names_the_response(worker: LocalWorker) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{worker.http_url}/v1/completions",
            json={"prompt": PROMPT, "max_tokens": 2},
            headers={"x-request-id": "abc-1"},
        ) as reply,
    ):
        assert reply.headers["x-request-id"] == "abc-1"
        assert (await reply.json())["id"] == "cmpl-abc-1"


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/v1/completions", {"prompt": PROMPT, "max_tokens": -1}, 400, "max_tokens"),
        ("/v1/completions", {"prompt": 42}, 400, "prompt"),
        ("/v1/chat/completions", {"model": "m"}, 400, "messages"),
        ("/v1/chat/completions", {"messages": MESSAGES, "max_tokens": "9"}, 400, "max_tokens"),
        # The engine's own limit: 4,096 KV tokens in this worker.
        ("/v1/completions", {"prompt": PROMPT, "max_tokens": 5000}, 400, "max_tokens"),
        ("/v1/completions", {"prompt": [1, 2**40]}, 400, "prompt[1]"),
        ("/v1/completions", {"model": "other", "prompt": PROMPT}, 404, "model"),
    ],
)
@pytest.mark.asyncio
async def test_bad_input_is_an_error_naming_the_field(
    worker: LocalWorker, path: str, body: dict[str, Any], status: int, param: str
) -> None:
    got_status, reply = await post_json(worker.http_url + path, body)
    assert got_status == status
    error = reply["error"]
    assert error["param"] == param and error["code"] == status
    assert param in error["message"] and "Traceback" not in error["message"]


@pytest.mark.asyncio
async def test_the_official_client_raises_the_400(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await client.completions.create(model="m", prompt=PROMPT, max_tokens=-1)
    assert raised.value.param == "max_tokens"


@pytest.mark.asyncio
async def test_a_body_that_is_not_json_is_a_400(worker: LocalWorker) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{worker.http_url}/v1/completions", data=b"{nope") as reply,
    ):
        assert reply.status == 400
        assert (await reply.json())["error"]["param"] == "body"


@pytest.mark.asyncio
async def test_a_client_leaving_mid_stream_aborts_the_engine_request() -> None:
    # Real time (time_scale 1): 2,000 decode steps take far longer than this test.
    pool = mock_pool("unified", time_scale=1.0)
    async with local_worker(pool, http_address="127.0.0.1:0") as worker:
        body = {"prompt": PROMPT, "max_tokens": 2000, "ignore_eos": True, "stream": True}
        async with aiohttp.ClientSession() as session:
            reply = await session.post(f"{worker.http_url}/v1/completions", json=body)
            assert reply.status == 200
            num_events = 0
            while num_events < 3:  # a few tokens arrived: the request is running
                line = await reply.content.readline()
                num_events += line.startswith(b"data: ")
            assert (await scrape(f"{worker.http_url}/metrics"))[RUNNING] == 1
            reply.close()  # drops the connection mid-stream
        await wait_for_metric(worker, RUNNING, 0)


@pytest.mark.asyncio
async def test_an_engine_failure_mid_stream_ends_the_stream_with_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = mock_engine(Role.UNIFIED, "w")

    async def fails_after_one_token(params: DecodeParams) -> AsyncIterator[Any]:
        yield Tokens((0,), TOKENIZER.decode([0]))
        raise EngineFailure("the accelerator fell over")

    monkeypatch.setattr(engine, "decode", fails_after_one_token)
    await engine.start()
    api = await start_worker_http_api(engine, "127.0.0.1:0")
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://{api.http_address}/v1/completions",
                json={"prompt": PROMPT, "stream": True},
            ) as reply,
        ):
            assert reply.status == 200  # the stream had started: the error is its last event
            events = (await reply.read()).decode().split("\n\n")
        assert '"text":" the"' in events[0]
        assert '"message":"the accelerator fell over"' in events[-3]
        assert events[-2:] == ["data: [DONE]", ""]
    finally:
        await api.close()
        await engine.close()


# --- long prompts -------------------------------------------------------------------


@pytest_asyncio.fixture
async def roomy_worker() -> AsyncIterator[LocalWorker]:
    """A worker whose context window is the profile's full 131,072 tokens."""
    pool = mock_pool("unified", kv_capacity_tokens=131_072)
    async with local_worker(pool, http_address="127.0.0.1:0") as started:
        yield started


@pytest.mark.asyncio
async def test_a_prompt_too_long_to_fit_is_refused_by_its_length_before_tokenizing(
    roomy_worker: LocalWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = roomy_worker
    encoded_lengths = record_encoded_lengths(monkeypatch)
    body = {"model": "m", "prompt": HUGE_PROMPT, "max_tokens": 4}
    status, reply = await post_json(f"{worker.http_url}/v1/completions", body)
    assert status == 400
    assert reply["error"]["param"] == "prompt"
    # 131,071 prompt tokens of at most 8 characters each.
    assert "is 24000000 characters" in reply["error"]["message"]
    assert "no text over 1048568 characters" in reply["error"]["message"]
    assert max(encoded_lengths, default=0) < 100


@pytest.mark.parametrize("path", ["/v1/completions", "/tokenize"])
@pytest.mark.asyncio
async def test_health_answers_while_a_long_prompt_is_tokenized(
    roomy_worker: LocalWorker, path: str
) -> None:
    worker = roomy_worker
    body = {"model": "m", "prompt": SLOW_PROMPT, "max_tokens": 4}
    completion = post_json(worker.http_url + path, body)
    slowest_s, (status, reply) = await slowest_reply_s(f"{worker.http_url}/health", completion)
    # Tokenized in full (it passes the length bound); too long to generate from.
    assert status == (400 if path == "/v1/completions" else 200), reply
    assert slowest_s < 0.2
