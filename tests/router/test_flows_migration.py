"""Request migration over scripted in-memory workers: a decode worker that fails
mid-answer is replaced by another that continues after the tokens the client has, so the
client reads one answer; bounded by `migrationLimit`, and as before when it is spent or
no worker is left. Scripted tokens depend on their position only (see
support.scripted_workers), so an answer continued at the wrong place shows in its text."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from triskel.common.api import Role
from triskel.common.http_listener import HttpLimits, start_http_listener
from triskel.common.routing_api import RoutingSettings, TimeoutsSpec
from triskel.router.http_api import build_http_app
from triskel.router.types import ServiceError

from support.scripted_workers import (
    FIRST_TOKEN_ID,
    PROMPT_IDS,
    Failure,
    Script,
    ScriptedRouter,
    ScriptedWorker,
    answer_text,
    generate,
    router_on,
    until,
)

# Short bounds, so a frozen or stalled worker fails its call within a second or two.
SETTINGS = RoutingSettings(timeouts=TimeoutsSpec(worker_silence_s=1, token_idle_s=1))
NUM_PROMPT = len(PROMPT_IDS)
MIGRATIONS = "triskel_router_migrations_total"
RETRIES = "triskel_router_retries_total"


def ids(first_position: int, num_tokens: int) -> tuple[int, ...]:
    """The scripted answer's token ids at these positions."""
    return tuple(FIRST_TOKEN_ID + p for p in range(first_position, first_position + num_tokens))


@pytest.mark.asyncio
@pytest.mark.parametrize("failure", list(Failure))
async def test_an_answer_continues_on_another_worker(failure: Failure) -> None:
    # Died (connection reset), frozen (silent) or stalled (idle): each ends the call after
    # 3 of 8 tokens, and u1 continues the answer after them.
    failing = ScriptedWorker("u0", Script(fail_after=3, failure=failure))
    healthy = ScriptedWorker("u1", Script(num_cached_tokens=16))
    async with router_on(SETTINGS, failing, healthy) as router:
        answer = await generate(router, max_tokens=8, seed=42)
        # The client gets exactly max_tokens tokens, none twice, none missing.
        assert answer.text == answer_text(NUM_PROMPT, 8)
        assert answer.num_token_events == 8
        finish = answer.finish
        assert (finish.finish_reason, finish.prompt_tokens, finish.completion_tokens) == (
            "length",
            NUM_PROMPT,
            8,
        )
        # The worker that finished tells its cache, as a retried request's would.
        assert finish.cached_prompt_tokens == 16
        # u1 prefilled the prompt and the 3 tokens, for the 5 still due, same seed.
        (continued,) = healthy.decode_calls
        assert tuple(continued.token_ids) == PROMPT_IDS + ids(NUM_PROMPT, 3)
        assert (continued.max_tokens, continued.seed, continued.kv) == (5, 42, None)
        assert router.count(MIGRATIONS, model="m", stage="unified") == 1
        assert router.count(RETRIES, stage="unified") == 0


@pytest.mark.asyncio
async def test_an_answer_migrates_more_than_once_within_the_limit() -> None:
    workers = (
        ScriptedWorker("u0", Script(fail_after=2)),
        ScriptedWorker("u1", Script(fail_after=3)),
        ScriptedWorker("u2"),
    )
    async with router_on(SETTINGS, *workers) as router:
        answer = await generate(router, max_tokens=10)
        assert answer.text == answer_text(NUM_PROMPT, 10)
        assert answer.finish.completion_tokens == 10
        # u1 continued after u0's 2 tokens; u2 after u0's 2 and u1's 3.
        assert workers[1].decode_calls[0].max_tokens == 8
        last = workers[2].decode_calls[0]
        assert (tuple(last.token_ids), last.max_tokens) == (PROMPT_IDS + ids(NUM_PROMPT, 5), 5)
        assert router.count(MIGRATIONS, model="m", stage="unified") == 2


@pytest.mark.asyncio
async def test_past_the_migration_limit_the_answer_ends_as_before() -> None:
    workers = (
        ScriptedWorker("u0", Script(fail_after=2)),
        ScriptedWorker("u1", Script(fail_after=2)),
        ScriptedWorker("u2"),
    )
    one_migration = SETTINGS.model_copy(update={"migration_limit": 1})
    async with router_on(one_migration, *workers) as router:
        answer = await generate(router, max_tokens=10)
        # u1 continued once; its own failure is the second: the stream ends there.
        assert answer.text == answer_text(NUM_PROMPT, 4)
        assert isinstance(answer.end, ServiceError)
        assert str(answer.end) == "the unified step for model m failed; retry later"
        assert workers[2].num_decodes == 0
        assert router.count(MIGRATIONS, model="m", stage="unified") == 1


@pytest.mark.asyncio
async def test_with_no_worker_left_the_client_reads_what_failed() -> None:
    # Not "no unified worker is available": the client's request failed mid-answer.
    alone = ScriptedWorker("u0", Script(fail_after=2))
    async with router_on(SETTINGS, alone) as router:
        answer = await generate(router)
        assert answer.text == answer_text(NUM_PROMPT, 2)
        assert str(answer.end) == "the unified step for model m failed; retry later"
        assert router.count(MIGRATIONS, model="m", stage="unified") == 0


@pytest.mark.asyncio
async def test_a_worker_lost_after_its_last_token_completes_the_answer() -> None:
    # All 8 tokens arrived, only the finish did not: nothing is left to generate.
    late = ScriptedWorker("u0", Script(fail_after=8))
    spare = ScriptedWorker("u1")
    async with router_on(SETTINGS, late, spare) as router:
        answer = await generate(router, max_tokens=8)
        assert answer.text == answer_text(NUM_PROMPT, 8)
        assert (answer.finish.finish_reason, answer.finish.completion_tokens) == ("length", 8)
        assert spare.num_decodes == 0


@pytest.mark.asyncio
async def test_a_stop_sequence_spanning_the_migration_point() -> None:
    # u0 sends w20 w21 and fails; " w21 w22" spans u0's last token and u1's first.
    stop = f" w{NUM_PROMPT + 1} w{NUM_PROMPT + 2}"
    failing = ScriptedWorker("u0", Script(fail_after=2))
    async with router_on(SETTINGS, failing, ScriptedWorker("u1")) as router:
        answer = await generate(router, max_tokens=8, stop=(stop,))
    # Text before the stop, once; the stop string not shown.
    assert answer.text == answer_text(NUM_PROMPT, 1)
    # Three tokens generated: two on u0, the stop's last on u1.
    assert (answer.finish.finish_reason, answer.finish.completion_tokens) == ("stop", 3)


@pytest.mark.asyncio
async def test_cached_tokens_never_exceed_the_prompt() -> None:
    # The continuing worker counts its cache of the prompt and the answer so far.
    failing = ScriptedWorker("u0", Script(fail_after=2))
    greedy = ScriptedWorker("u1", Script(num_cached_tokens=NUM_PROMPT + 2))
    async with router_on(SETTINGS, failing, greedy) as router:
        answer = await generate(router)
        assert answer.finish.cached_prompt_tokens == NUM_PROMPT
        stopped = await generate(router, stop=(f" w{NUM_PROMPT + 5}",))
        assert (stopped.finish.finish_reason, stopped.finish.cached_prompt_tokens) == (
            "stop",
            NUM_PROMPT,
        )


# -- prefill / decode ---------------------------------------------------------------


def pd_workers(*decode_scripts: Script) -> tuple[ScriptedWorker, list[ScriptedWorker]]:
    prefill = ScriptedWorker("p0", Script(num_cached_tokens=4), Role.PREFILL)
    decode = [ScriptedWorker(f"d{i}", s, Role.DECODE) for i, s in enumerate(decode_scripts)]
    return prefill, decode


@pytest.mark.asyncio
async def test_a_decode_worker_failing_mid_answer_after_a_kv_transfer() -> None:
    prefill, (failing, healthy) = pd_workers(Script(fail_after=3), Script(num_cached_tokens=8))
    async with router_on(SETTINGS, prefill, failing, healthy) as router:
        answer = await generate(router, max_tokens=8)
        # The prefill's first token, d0's three, d1's four.
        assert answer.text == answer_text(NUM_PROMPT, 8)
        assert answer.finish.completion_tokens == 8
        # The worker that finished tells its cache (the prefill's said 4).
        assert answer.finish.cached_prompt_tokens == 8
        assert failing.decode_calls[0].kv is not None
        # d1 prefills locally (the KV went to d0): prompt, first token, d0's tokens.
        (continued,) = healthy.decode_calls
        assert continued.kv is None
        assert tuple(continued.token_ids) == PROMPT_IDS + ids(NUM_PROMPT, 4)
        assert continued.max_tokens == 4
        assert router.count(MIGRATIONS, model="m", stage="decode") == 1
        # d0 pulled the KV: the prefill worker has nothing left to free.
        assert prefill.num_cancels == 0


@pytest.mark.asyncio
async def test_a_decode_worker_failing_after_its_pull_before_a_token_is_retried() -> None:
    # Was: local prefill of the prompt alone, dropping the first token again generated
    # (right only when outputs are deterministic). Now the retry continues after it.
    prefill, (failing, healthy) = pd_workers(Script(fail_after=0), Script())
    async with router_on(SETTINGS, prefill, failing, healthy) as router:
        answer = await generate(router, max_tokens=8)
        assert answer.text == answer_text(NUM_PROMPT, 8)
        assert answer.finish.completion_tokens == 8
        (continued,) = healthy.decode_calls
        assert (tuple(continued.token_ids), continued.max_tokens) == (
            PROMPT_IDS + ids(NUM_PROMPT, 1),
            7,
        )
        assert continued.kv is None
        assert router.count(RETRIES, stage="decode") == 1
        assert router.count(MIGRATIONS, model="m", stage="decode") == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("failure", [Failure.DIES, Failure.FREEZES])
async def test_a_decode_worker_lost_before_telling_its_pull_is_retried_prefilling(
    failure: Failure,
) -> None:
    # d0 pulled the single-use KV, then went away (a drained pod) before its report
    # came: d1 must not be sent the spent handle (it would fail "unknown or expired KV
    # handle" and the client a 503); it prefills the prompt and the first token itself.
    lost = Script(fails_before_pull_report=True, failure=failure)
    prefill, (failing, healthy) = pd_workers(lost, Script())
    async with router_on(SETTINGS, prefill, failing, healthy) as router:
        answer = await generate(router, max_tokens=8)
        assert answer.text == answer_text(NUM_PROMPT, 8)
        assert failing.decode_calls[0].kv is not None
        (continued,) = healthy.decode_calls
        assert continued.kv is None
        assert (tuple(continued.token_ids), continued.max_tokens) == (
            PROMPT_IDS + ids(NUM_PROMPT, 1),
            7,
        )
        assert router.count(RETRIES, stage="decode") == 1
        # Nobody told a pull: the prefill worker is told to free the KV (a no-op where
        # it was pulled), once the request's stream is closed.
        await until(lambda: prefill.num_cancels == 1, "the prefill worker told to free")


# -- through the HTTP front -----------------------------------------------------------


async def post(router: ScriptedRouter, body: dict[str, Any]) -> tuple[int, str]:
    runner, port = await start_http_listener(
        build_http_app(router.orchestrator, router.metrics), "127.0.0.1", 0, HttpLimits()
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/completions"
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
            return response.status, await response.text()
    finally:
        await runner.cleanup()


def sse_data(raw: str) -> list[Any]:
    return [
        json.loads(line[len("data: ") :])
        for line in raw.split("\n\n")
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


@pytest.mark.asyncio
async def test_a_non_streamed_client_gets_one_whole_reply() -> None:
    # Before migration: a 503, though the client had received nothing.
    failing = ScriptedWorker("u0", Script(fail_after=5))
    async with router_on(SETTINGS, failing, ScriptedWorker("u1")) as router:
        body = {"model": "m", "prompt": list(PROMPT_IDS), "max_tokens": 12}
        status, text = await post(router, body)
    assert status == 200, text
    reply = json.loads(text)
    assert reply["choices"][0]["text"] == answer_text(NUM_PROMPT, 12)
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"]["prompt_tokens"] == NUM_PROMPT
    assert reply["usage"]["completion_tokens"] == 12


@pytest.mark.asyncio
async def test_a_streamed_client_reads_one_uninterrupted_stream() -> None:
    failing = ScriptedWorker("u0", Script(fail_after=5))
    async with router_on(SETTINGS, failing, ScriptedWorker("u1")) as router:
        body = {
            "model": "m",
            "prompt": list(PROMPT_IDS),
            "max_tokens": 12,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        status, raw = await post(router, body)
    assert status == 200, raw
    assert raw.rstrip().endswith("data: [DONE]")
    chunks = sse_data(raw)
    assert not [c for c in chunks if "error" in c], chunks
    text = "".join(c["choices"][0]["text"] for c in chunks if c.get("choices"))
    assert text == answer_text(NUM_PROMPT, 12)
    usage = chunks[-1]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (NUM_PROMPT, 12)
