"""The sampling fields of the worker's HTTP API, as vLLM's OpenAI server takes them:
`stop` ends the answer before the stop string, `seed` picks the answer, every accepted
field is checked by type and range, and features the mock cannot serve are a 400."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from support.local_workers import (
    LocalWorker,
    local_worker,
    mock_pool,
    post_json,
    wait_for_metric,
    worker_metric,
)
from support.pd_workers import (
    COMPLETION,
    cluster,
    path_of,
    prefill_for_vllm,
    reference_text,
    stream_text,
    text_of,
)

PROMPT = "The river runs under the old stone bridge"
BODIES = {
    "/v1/completions": {"prompt": PROMPT, "max_tokens": 12, "ignore_eos": True},
    "/v1/chat/completions": {
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 12,
        "ignore_eos": True,
    },
}
RUNNING = worker_metric("vllm:num_requests_running")


@pytest_asyncio.fixture
async def worker() -> AsyncIterator[LocalWorker]:
    async with local_worker(mock_pool("unified"), http_address="127.0.0.1:0") as started:
        yield started


async def answer(worker: LocalWorker, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, reply = await post_json(worker.http_url + path, body)
    assert status == 200, reply
    return dict(reply)


def stop_in(text: str) -> tuple[str, str]:
    """A stop string from the middle of `text` (its 5th word), and the text before it."""
    stop = " " + text.split(" ")[5]
    return stop, text[: text.index(stop)]


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.asyncio
async def test_a_stop_string_ends_the_answer_before_it(worker: LocalWorker, path: str) -> None:
    body = BODIES[path]
    stop, before = stop_in(text_of(await answer(worker, path, body)))
    for stops in (stop, ["never appears", stop]):
        reply = await answer(worker, path, {**body, "stop": stops})
        assert text_of(reply) == before
        assert reply["choices"][0]["finish_reason"] == "stop"
        # The token that held the stop string was generated, the rest was not.
        assert reply["usage"]["completion_tokens"] < body["max_tokens"]
        text, _, finish = await stream_text(worker, {**body, "model": "m", "stop": stops})
        assert (text, finish) == (before, "stop")


@pytest.mark.asyncio
async def test_a_stop_string_that_never_comes_changes_nothing(worker: LocalWorker) -> None:
    path, body = "/v1/completions", BODIES["/v1/completions"]
    reference = await answer(worker, path, body)
    reply = await answer(worker, path, {**body, "stop": ["never appears"]})
    assert text_of(reply) == text_of(reference)
    assert reply["choices"][0]["finish_reason"] == "length"


@pytest.mark.asyncio
async def test_a_stop_string_cancels_the_rest_of_the_generation() -> None:
    # Real time (time_scale 1): 2,000 decode steps take far longer than this test.
    async with local_worker(
        mock_pool("unified", time_scale=1.0), http_address="127.0.0.1:0"
    ) as worker:
        path, body = "/v1/completions", BODIES["/v1/completions"]
        stop, before = stop_in(text_of(await answer(worker, path, body)))
        reply = await answer(worker, path, {**body, "max_tokens": 2000, "stop": stop})
        assert (text_of(reply), reply["choices"][0]["finish_reason"]) == (before, "stop")
        await wait_for_metric(worker, RUNNING, 0)


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.asyncio
async def test_the_same_seed_gives_the_same_answer_and_another_another(
    worker: LocalWorker, path: str
) -> None:
    body = BODIES[path]
    unseeded = text_of(await answer(worker, path, body))
    seeded = [text_of(await answer(worker, path, {**body, "seed": seed})) for seed in (7, 7, 8)]
    assert seeded[0] == seeded[1]
    assert len({unseeded, seeded[0], seeded[2]}) == 3


@pytest.mark.asyncio
async def test_a_seeded_vllm_style_pd_request_answers_as_a_unified_worker() -> None:
    async with cluster() as workers:
        body = {**COMPLETION, "seed": 1234}
        # vllm-router forwards the client's body, seed included, to both workers.
        params = (await prefill_for_vllm(workers, body))["kv_transfer_params"]
        text, _, finish = await stream_text(workers.decode, {**body, "kv_transfer_params": params})
        reference = await reference_text(workers, body)
        assert (text, finish) == (reference, "length")
        assert reference != await reference_text(workers, COMPLETION)
        assert path_of(body) == "/v1/completions"


CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"


@pytest.mark.parametrize(
    ("path", "fields", "param"),
    [
        # Wrong types and ranges of accepted fields (the router's checks, shared).
        (COMPLETIONS, {"temperature": "x"}, "temperature"),
        (CHAT, {"temperature": 2.5}, "temperature"),
        (CHAT, {"top_p": 0}, "top_p"),
        (COMPLETIONS, {"top_k": 1.5}, "top_k"),
        (CHAT, {"presence_penalty": True}, "presence_penalty"),
        (COMPLETIONS, {"seed": "7"}, "seed"),
        (CHAT, {"seed": 2**64}, "seed"),
        (CHAT, {"user": 5}, "user"),
        (COMPLETIONS, {"stop": 5}, "stop"),
        (CHAT, {"stop": ["a", 1]}, "stop"),
        (CHAT, {"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        (COMPLETIONS, {"stop": [""]}, "stop[0]"),
        (COMPLETIONS, {"min_tokens": -1}, "min_tokens"),
        # Features the mock cannot serve: refused, never silently dropped.
        (CHAT, {"tools": 5}, "tools"),
        (CHAT, {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        (CHAT, {"tool_choice": "required"}, "tool_choice"),
        (CHAT, {"response_format": {"type": "json_object"}}, "response_format"),
        (COMPLETIONS, {"logit_bias": {"1": 5}}, "logit_bias"),
        (CHAT, {"top_logprobs": 2}, "top_logprobs"),
        (COMPLETIONS, {"include_stop_str_in_output": True}, "include_stop_str_in_output"),
        (COMPLETIONS, {"stop_token_ids": [5]}, "stop_token_ids"),
        (CHAT, {"guided_json": {"type": "object"}}, "guided_json"),
        (CHAT, {"structured_outputs": {"regex": "a+"}}, "structured_outputs"),
        (COMPLETIONS, {"bad_words": ["river"]}, "bad_words"),
        (COMPLETIONS, {"n": 2}, "n"),
        (COMPLETIONS, {"echo": True}, "echo"),
    ],
)
@pytest.mark.asyncio
async def test_a_bad_or_unsupported_field_is_a_400_naming_it(
    worker: LocalWorker, path: str, fields: dict[str, Any], param: str
) -> None:
    status, reply = await post_json(worker.http_url + path, {**BODIES[path], **fields})
    assert status == 400, reply
    error = reply["error"]
    assert (error["param"], error["type"], error["code"]) == (param, "BadRequestError", 400)
    assert error["message"].startswith(f"{param}: ")


@pytest.mark.asyncio
async def test_accepted_knobs_the_mock_does_not_model_leave_the_answer_alone(
    worker: LocalWorker,
) -> None:
    path, body = COMPLETIONS, BODIES[COMPLETIONS]
    reference = text_of(await answer(worker, path, body))
    knobs = {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 40,
        "min_p": 0.05,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.5,
        "repetition_penalty": 1.1,
        "min_tokens": 1,
        "tools": [],
        "tool_choice": "none",
        "response_format": {"type": "text"},
        "include_stop_str_in_output": False,
        "stop_token_ids": [],
        "user": "u",
    }
    assert text_of(await answer(worker, path, {**body, **knobs})) == reference
