"""P/D between real mock workers over HTTP, with real KV bytes (checksummed by the
connector): vLLM style (kv_transfer_params, as vllm-router drives it) and SGLang style
(bootstrap rooms, as smg drives it), and every way an exchange can fail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
import pytest_asyncio

from support.local_workers import post_json, scrape
from support.pd_workers import (
    CHAT,
    COMPLETION,
    KV_EXPORTED,
    KV_RECEIVED,
    PROMPT,
    VLLM_PREFILL_FIELDS,
    Cluster,
    cluster,
    kv_bytes,
    path_of,
    prefill_for_vllm,
    reference_text,
    sglang_body,
    stream_text,
    text_of,
)


@pytest_asyncio.fixture
async def workers() -> AsyncIterator[Cluster]:
    async with cluster() as started:
        yield started


@pytest.mark.parametrize("connector", ["tcp", "mooncake"])
@pytest.mark.asyncio
async def test_vllm_style_exchange_decodes_what_a_unified_worker_generates(
    connector: str,
) -> None:
    async with cluster(connector) as workers:
        expected_bytes = 0
        for body in (COMPLETION, CHAT):
            prefill = await prefill_for_vllm(workers, body)
            params = prefill["kv_transfer_params"]
            assert params["remote_engine_id"] == "prefill-0"
            assert params["remote_host"] == "127.0.0.1" and params["tp_size"] == 1
            assert params["triskel"]["connector"] == connector
            assert len(params["remote_block_ids"]) == len(params["triskel"]["block_checksums"])
            # The prefill's own answer: its first token, stopped by max_tokens 1.
            assert prefill["choices"][0]["finish_reason"] == "length"
            assert prefill["usage"]["completion_tokens"] == 1
            reference = await reference_text(workers, body)
            # Every generated token is a word with its leading space.
            assert text_of(prefill) == " " + reference.split(" ")[1]
            # vllm-router's step 2: the original body plus the params, copied verbatim.
            text, num_tokens, finish = await stream_text(
                workers.decode, {**body, "kv_transfer_params": params}
            )
            assert (text, num_tokens, finish) == (reference, body["max_tokens"], "length")
            expected_bytes += kv_bytes(params)
        assert (await scrape(f"{workers.decode.http_url}/metrics"))[KV_RECEIVED] == expected_bytes
        assert (await scrape(f"{workers.prefill.http_url}/metrics"))[KV_EXPORTED] == 2


@pytest.mark.asyncio
async def test_a_one_token_decode_still_pulls_the_kv(workers: Cluster) -> None:
    prefill = await prefill_for_vllm(workers, COMPLETION)
    body = {**COMPLETION, "max_tokens": 1, "kv_transfer_params": prefill["kv_transfer_params"]}
    status, reply = await post_json(workers.decode.http_url + "/v1/completions", body)
    assert status == 200, reply
    assert text_of(reply) == text_of(prefill)
    assert reply["usage"]["completion_tokens"] == 1
    metrics = await scrape(f"{workers.decode.http_url}/metrics")
    assert metrics[KV_RECEIVED] == kv_bytes(prefill["kv_transfer_params"])


@pytest.mark.asyncio
async def test_a_streamed_prefill_carries_the_params_on_its_finish_chunk(workers: Cluster) -> None:
    body = {**COMPLETION, **VLLM_PREFILL_FIELDS, "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{workers.prefill.http_url}/v1/completions", json=body) as reply,
    ):
        assert reply.status == 200
        events = [
            orjson.loads(line.removeprefix(b"data: "))
            async for line in reply.content
            if line.startswith(b"data: {")
        ]
    finish = events[-1]
    assert finish["choices"][0]["finish_reason"] == "length"
    # A decode with these params works like one with a whole answer's.
    decode_body = {**COMPLETION, "kv_transfer_params": finish["kv_transfer_params"]}
    status, reply_body = await post_json(workers.decode.http_url + "/v1/completions", decode_body)
    assert status == 200
    assert text_of(reply_body) == await reference_text(workers, COMPLETION)


@pytest.mark.asyncio
async def test_pulling_the_same_params_twice_is_a_410(workers: Cluster) -> None:
    params = (await prefill_for_vllm(workers, COMPLETION))["kv_transfer_params"]
    decode_url = workers.decode.http_url + "/v1/completions"
    body = {**COMPLETION, "kv_transfer_params": params}
    assert (await post_json(decode_url, body))[0] == 200
    # Streamed, so the status proves the response was not started before the pull failed.
    status, reply = await post_json(decode_url, {**body, "stream": True})
    assert status == 410, reply
    assert reply["error"]["param"] == "kv_transfer_params.remote_request_id"
    assert "gone" in reply["error"]["message"]


@pytest.mark.asyncio
async def test_params_of_a_stopped_prefill_worker_are_a_502_naming_it(workers: Cluster) -> None:
    params = (await prefill_for_vllm(workers, COMPLETION))["kv_transfer_params"]
    await workers.prefill.stop()
    body = {**COMPLETION, "kv_transfer_params": params}
    status, reply = await post_json(workers.decode.http_url + "/v1/completions", body)
    assert status == 502, reply
    assert f"{params['remote_host']}:{params['remote_port']}" in reply["error"]["message"]


@pytest.mark.parametrize("connector", ["tcp", "mooncake"])
@pytest.mark.asyncio
async def test_sglang_style_exchange_decodes_what_a_unified_worker_generates(
    connector: str,
) -> None:
    async with cluster(connector) as workers:
        for body in (COMPLETION, CHAT):
            both = sglang_body(body, workers.bootstrap_port)
            prefill, (text, num_tokens, finish) = await asyncio.gather(
                post_json(workers.prefill.http_url + path_of(body), both),
                stream_text(workers.decode, both),
            )
            assert prefill[0] == 200, prefill
            reference = await reference_text(workers, body)
            assert (text, num_tokens, finish) == (reference, body["max_tokens"], "length")
        metrics = await scrape(f"{workers.decode.http_url}/metrics")
        assert metrics[KV_RECEIVED] > 0
        assert (await scrape(f"{workers.prefill.http_url}/metrics"))[KV_EXPORTED] == 2


@pytest.mark.asyncio
async def test_sglang_style_kv_bytes_are_every_block(workers: Cluster) -> None:
    # The same prompt through vLLM-style P/D tells how many bytes its KV has.
    size = kv_bytes((await prefill_for_vllm(workers, COMPLETION))["kv_transfer_params"])
    both = sglang_body(COMPLETION, workers.bootstrap_port)
    (status, _), (decode_status, _) = await asyncio.gather(
        post_json(workers.prefill.http_url + "/v1/completions", both),
        post_json(workers.decode.http_url + "/v1/completions", both),
    )
    assert (status, decode_status) == (200, 200)
    assert (await scrape(f"{workers.decode.http_url}/metrics"))[KV_RECEIVED] == size


@pytest.mark.asyncio
async def test_sglang_decode_whose_prefill_worker_stops_is_a_502() -> None:
    async with cluster(bootstrap_wait_s=20) as workers:
        body = sglang_body(COMPLETION, workers.bootstrap_port)
        started = time.perf_counter()
        # The prefill worker never gets the request, and stops while the decode waits.
        waiting = asyncio.create_task(post_json(workers.decode.http_url + "/v1/completions", body))
        await workers.prefill.stop()
        status, reply = await waiting
    assert status == 502, reply
    assert f"bootstrap server 127.0.0.1:{workers.bootstrap_port}" in reply["error"]["message"]
    assert time.perf_counter() - started < 10  # well within the 20 s bound


@pytest.mark.asyncio
async def test_sglang_room_never_published_is_a_504_within_the_bound() -> None:
    async with cluster(bootstrap_wait_s=0.5) as workers:
        body = sglang_body(COMPLETION, workers.bootstrap_port)
        started = time.perf_counter()
        status, reply = await post_json(workers.decode.http_url + "/v1/completions", body)
        assert time.perf_counter() - started < 5
    assert status == 504, reply
    assert f"room {body['bootstrap_room']}" in reply["error"]["message"]


@pytest.mark.asyncio
async def test_sglang_prefill_of_another_prompt_is_a_400(workers: Cluster) -> None:
    body = sglang_body(COMPLETION, workers.bootstrap_port)
    other = {**body, "prompt": PROMPT + " twice"}
    (prefill_status, _), (status, reply) = await asyncio.gather(
        post_json(workers.prefill.http_url + "/v1/completions", other),
        post_json(workers.decode.http_url + "/v1/completions", body),
    )
    assert prefill_status == 200
    assert status == 400 and reply["error"]["param"] == "bootstrap_room"


@pytest.mark.asyncio
async def test_a_failed_sglang_prefill_fails_its_decode_at_once(workers: Cluster) -> None:
    # The prefill refuses the body (too long for its KV pool) and says so in the room;
    # the decode worker (whose check is the same) must not wait out its bound either way.
    body = sglang_body({**COMPLETION, "max_tokens": 5000}, workers.bootstrap_port)
    prefill, decode = await asyncio.gather(
        post_json(workers.prefill.http_url + "/v1/completions", body),
        post_json(workers.decode.http_url + "/v1/completions", body),
    )
    assert (prefill[0], prefill[1]["error"]["param"]) == (400, "max_tokens")
    assert (decode[0], decode[1]["error"]["param"]) == (400, "max_tokens")
