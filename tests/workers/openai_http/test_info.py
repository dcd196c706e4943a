"""The small endpoints: models, health, the tokenizer's, render (vllm-router's cache-aware
policy), and the info endpoints smg probes, on a real worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from triskel.common.tokenizer import MockTokenizer, render_chat

from support.local_workers import LocalWorker, local_worker, mock_pool, post_json

TOKENIZER = MockTokenizer()
PROMPT = "Where does the river meet the ocean?"
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Name a river."}]},
]
CHAT_TEXT = render_chat([("system", "Be brief."), ("user", "Name a river.")])


@pytest_asyncio.fixture
async def worker() -> AsyncIterator[LocalWorker]:
    async with local_worker(
        mock_pool("prefill"),
        "prefill-3",
        http_address="127.0.0.1:0",
        bootstrap_address="127.0.0.1:0",
    ) as started:
        yield started


async def get(worker: LocalWorker, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(worker.http_url + path) as reply:
        return reply.status, await reply.json(content_type=None) if await reply.read() else None


@pytest.mark.asyncio
async def test_models_lists_the_served_model(worker: LocalWorker) -> None:
    status, reply = await get(worker, "/v1/models")
    assert status == 200
    # The test pool's KV holds 4,096 tokens: that, not the model's 131,072-token window,
    # is the longest sequence this worker can serve (vLLM's max_model_len is bounded alike).
    assert [(m["id"], m["max_model_len"]) for m in reply["data"]] == [("m", 4096)]


@pytest.mark.asyncio
async def test_health_is_an_empty_200(worker: LocalWorker) -> None:
    assert await get(worker, "/health") == (200, None)


@pytest.mark.asyncio
async def test_tokenize_gives_the_mock_tokenizers_ids(worker: LocalWorker) -> None:
    status, reply = await post_json(worker.http_url + "/tokenize", {"prompt": PROMPT})
    expected = TOKENIZER.encode(PROMPT)
    assert (status, reply["tokens"], reply["count"]) == (200, expected, len(expected))
    assert reply["max_model_len"] == 4096  # the pool's KV, not the 131,072-token window
    status, reply = await post_json(worker.http_url + "/tokenize", {"messages": MESSAGES})
    assert reply["tokens"] == TOKENIZER.encode(CHAT_TEXT)
    _, reply = await post_json(
        worker.http_url + "/tokenize", {"messages": MESSAGES, "add_generation_prompt": False}
    )
    assert reply["tokens"] == TOKENIZER.encode(CHAT_TEXT.removesuffix("<|assistant|>\n"))


@pytest.mark.asyncio
async def test_detokenize_inverts_generated_ids(worker: LocalWorker) -> None:
    ids = TOKENIZER.encode(" the river")
    status, reply = await post_json(worker.http_url + "/detokenize", {"tokens": ids})
    assert (status, reply) == (200, {"prompt": " the river"})


@pytest.mark.parametrize(
    ("path", "body", "text"),
    [
        ("/v1/completions/render", {"model": "m", "prompt": PROMPT, "max_tokens": 3}, PROMPT),
        ("/v1/chat/completions/render", {"model": "m", "messages": MESSAGES}, CHAT_TEXT),
    ],
)
@pytest.mark.asyncio
async def test_render_gives_the_ids_generation_would_run_on(
    worker: LocalWorker, path: str, body: dict[str, Any], text: str
) -> None:
    status, reply = await post_json(worker.http_url + path, body)
    assert (status, reply) == (200, {"token_ids": TOKENIZER.encode(text)})


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/tokenize", {"prompt": 3}, "prompt"),
        ("/tokenize", {"prompt": "x", "add_generation_prompt": "yes"}, "add_generation_prompt"),
        ("/detokenize", {"tokens": "abc"}, "tokens"),
        ("/v1/chat/completions/render", {"prompt": PROMPT}, "messages"),
    ],
)
@pytest.mark.asyncio
async def test_bad_bodies_are_400s(
    worker: LocalWorker, path: str, body: dict[str, Any], param: str
) -> None:
    status, reply = await post_json(worker.http_url + path, body)
    assert (status, reply["error"]["param"]) == (400, param)


@pytest.mark.parametrize("path", ["/get_model_info", "/model_info"])
@pytest.mark.asyncio
async def test_model_info_says_who_the_worker_is(worker: LocalWorker, path: str) -> None:
    status, reply = await get(worker, path)
    assert status == 200
    assert (reply["model_path"], reply["tokenizer_path"], reply["is_generation"]) == (
        "m",
        "m",
        True,
    )
    # What Triskel's router needs of a worker it reaches only over HTTP.
    assert reply["triskel"] == {
        "worker_id": "prefill-3",
        "role": "prefill",
        "model": "m",
        "profile": "llama-3.1-8b-h100",
        "block_size_tokens": 16,
        "max_context_tokens": 4096,
        "kv_connector": "tcp",
        "num_kv_blocks": 256,
        "hash_salt": "",
    }


@pytest.mark.parametrize("path", ["/get_server_info", "/server_info"])
@pytest.mark.asyncio
async def test_server_info_answers_smgs_probe(worker: LocalWorker, path: str) -> None:
    status, reply = await get(worker, path)
    assert status == 200
    assert reply["disaggregation_mode"] == "prefill"
    assert worker.endpoints.bootstrap is not None
    assert reply["disaggregation_bootstrap_port"] == int(worker.endpoints.bootstrap.split(":")[1])
    assert (reply["page_size"], reply["max_total_num_tokens"]) == (16, 4096)


@pytest.mark.asyncio
async def test_version(worker: LocalWorker) -> None:
    status, reply = await get(worker, "/version")
    assert status == 200 and isinstance(reply["version"], str)
