"""Workers failing under load: killed mid-stream, before the first token, during a KV
transfer, or frozen (SIGSTOP) so they hang rather than die. Every client request ends
within its deadline, answered or with a clear error; a decode worker lost mid-answer
while another is left costs no request (it migrates); the router logs no traceback and
keeps serving on the workers left."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.fault_deployment import (
    ANSWERED,
    ERROR,
    REQUEST_DEADLINE_S,
    Deployment,
    Outcome,
    busy_worker,
    first_worker_where,
    outcome_of,
    process_deployment,
)
from support.fuzzing import assert_no_tracebacks
from support.waiting import wait_until

PROFILE = "{name: llama-3.1-8b-h100, kvCapacityTokens: 65536}"
# 20× the modelled prefill time: long enough to kill a worker while it prefills.
SLOW_PROFILE = "{name: llama-3.1-8b-h100, kvCapacityTokens: 65536, timeScale: 20}"
# What a client of a frozen worker waits: past every healthy answer here (400 tokens).
FROZEN_DEADLINE_S = 15.0


def pools(num_prefill: int, num_decode: int, prefill_profile: str = PROFILE) -> str:
    def replicas(n: int) -> str:
        return f"{{min: {n}, max: {n}}}"

    return f"""
pools:
  - {{name: prefill, role: prefill, model: m, replicas: {replicas(num_prefill)},
     kvConnector: {{type: tcp}}, profile: {prefill_profile}}}
  - {{name: decode, role: decode, model: m, replicas: {replicas(num_decode)},
     kvConnector: {{type: tcp}}, profile: {PROFILE}}}
"""


def bodies(num_requests: int, max_tokens: int, prompt_words: int = 20) -> list[dict[str, Any]]:
    """Half streamed, half not; each prompt different (no shared prefix cache)."""
    return [
        {
            "model": "m",
            "prompt": f"Request {i}: " + "tell me about rivers and bridges " * prompt_words,
            "max_tokens": max_tokens,
            "ignore_eos": True,
            "stream": i % 2 == 0,
        }
        for i in range(num_requests)
    ]


async def under_fault(
    deployment: Deployment,
    requests: list[dict[str, Any]],
    fault: Callable[[asyncio.Event], Awaitable[None]],
    deadline_s: float = REQUEST_DEADLINE_S,
    num_tokens_before: int = 1,
) -> list[Outcome]:
    """Sends every request at once and runs `fault` meanwhile (it gets an event set when
    a stream has sent `num_tokens_before` events); every request's outcome, once all
    ended."""
    streaming = asyncio.Event()

    def on_event(num_events: int) -> None:
        if num_events >= num_tokens_before:
            streaming.set()

    clients = [outcome_of(deployment.base_url, body, on_event, deadline_s) for body in requests]
    outcomes = asyncio.gather(*clients)
    await fault(streaming)
    return list(await outcomes)


async def assert_still_serves(deployment: Deployment) -> None:
    """A fresh request after the fault is answered by the workers left."""
    for body in bodies(2, max_tokens=8):
        assert (await outcome_of(deployment.base_url, body)).kind == ANSWERED


@pytest.mark.asyncio
async def test_a_decode_worker_killed_mid_stream(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with process_deployment(pools(1, 2)) as deployment:

        async def kill_a_streaming_decode_worker(first_token: asyncio.Event) -> None:
            await asyncio.wait_for(first_token.wait(), 30)
            deployment.kill(await busy_worker(deployment, ["decode-0", "decode-1"]))

        # Each of the killed worker's requests is retried (before its first token) or
        # continues on the other decode worker (after it): every one is answered.
        # Killed 20 events into a stream: past the prefill's token, decode tokens flow.
        outcomes = await under_fault(
            deployment,
            bodies(8, max_tokens=150),
            kill_a_streaming_decode_worker,
            num_tokens_before=20,
        )
        assert all(o.kind == ANSWERED for o in outcomes), outcomes
        # The kill found answers under way, which migrated.
        assert await counted(deployment, "triskel_router_migrations_total") >= 1
        await assert_still_serves(deployment)
    assert_no_tracebacks(caplog.records)


@pytest.mark.asyncio
async def test_a_prefill_worker_killed_before_the_first_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with process_deployment(pools(2, 1, prefill_profile=SLOW_PROFILE)) as deployment:

        async def kill_a_prefilling_worker(first_token: asyncio.Event) -> None:
            busy = await busy_worker(deployment, ["prefill-0", "prefill-1"])
            assert not first_token.is_set()
            deployment.kill(busy)

        requests = bodies(4, max_tokens=8, prompt_words=150)
        outcomes = await under_fault(deployment, requests, kill_a_prefilling_worker)
        # Nothing was sent yet: the router retries the prefill on the other worker.
        assert ANSWERED in {o.kind for o in outcomes}, outcomes
        await assert_still_serves(deployment)
    assert_no_tracebacks(caplog.records)


@pytest.mark.asyncio
async def test_a_prefill_worker_killed_during_a_kv_transfer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with process_deployment(pools(2, 1)) as deployment:

        async def kill_an_exporting_worker(_: asyncio.Event) -> None:
            # KV held for a pull: the decode worker is pulling it or about to.
            exporter = await first_worker_where(
                deployment, ["prefill-0", "prefill-1"], lambda load: load.num_kv_holds > 0
            )
            deployment.kill(exporter)

        requests = bodies(8, max_tokens=8, prompt_words=200)
        await under_fault(deployment, requests, kill_an_exporting_worker)
        await assert_still_serves(deployment)
    assert_no_tracebacks(caplog.records)


# A frozen worker keeps its connections open (its kernel still ACKs TCP), so gRPC alone
# would hold its streams for the whole decode bound (30 min). Its load reports stop: after
# workerSilenceS (5 s) the router leaves it out and ends its calls, and the answers under
# way continue on the other decode worker.
@pytest.mark.asyncio
async def test_a_decode_worker_frozen_mid_stream(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with process_deployment(pools(1, 2)) as deployment:
        outcomes = await under_fault(
            deployment,
            bodies(4, max_tokens=400),
            freeze_a_streaming_decode_worker(deployment, ["decode-0", "decode-1"]),
            deadline_s=FROZEN_DEADLINE_S,
            num_tokens_before=50,
        )
        assert all(o.kind == ANSWERED for o in outcomes), outcomes
        assert await counted(deployment, "triskel_router_migrations_total") >= 1
        await assert_still_serves(deployment)
    assert_no_tracebacks(caplog.records)


@pytest.mark.asyncio
async def test_the_only_decode_worker_frozen_mid_stream(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with process_deployment(pools(1, 1)) as deployment:
        # Frozen 50 tokens into a stream: every request has its decode tokens coming (one
        # frozen before its first decode token would be retried, and fail the same way).
        outcomes = await under_fault(
            deployment,
            bodies(4, max_tokens=400),
            freeze_a_streaming_decode_worker(deployment, ["decode-0"]),
            deadline_s=FROZEN_DEADLINE_S,
            num_tokens_before=50,
        )
        # No worker is left to continue on: each answer ends with an error.
        errors = [o.detail for o in outcomes if o.kind == ERROR]
        assert len(errors) == len(outcomes), outcomes
        # Each says which step stopped and what to do; none names a worker or an address.
        for detail in errors:
            assert "decode step for model m" in detail and "retry later" in detail, detail
            assert "127.0.0.1" not in detail and "decode-" not in detail, detail
        deployment.thaw("decode-0")
        await assert_still_serves(deployment)
    assert_no_tracebacks(caplog.records)


def freeze_a_streaming_decode_worker(
    deployment: Deployment, worker_ids: list[str]
) -> Callable[[asyncio.Event], Awaitable[None]]:
    async def freeze(streaming: asyncio.Event) -> None:
        await asyncio.wait_for(streaming.wait(), 30)
        deployment.freeze(await busy_worker(deployment, worker_ids))

    return freeze


@pytest.mark.asyncio
async def test_a_frozen_worker_is_left_out_and_returns_when_it_resumes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="triskel.router.cluster")
    async with process_deployment(pools(1, 2)) as deployment:
        deployment.freeze("decode-0")
        await wait_for_log(caplog, "worker decode-0 sent no load report")
        # Left out: every request goes to decode-1, none waits on the frozen worker.
        served_before = await num_served(deployment, "decode-0")
        await assert_still_serves(deployment)
        assert await num_served(deployment, "decode-0") == served_before

        deployment.thaw("decode-0")
        await wait_for_log(caplog, "worker decode-0 reports again")
        # Back in rotation: round-robin gives it requests again.
        async with asyncio.timeout(REQUEST_DEADLINE_S):
            while await num_served(deployment, "decode-0") == served_before:
                await assert_still_serves(deployment)
    assert_no_tracebacks(caplog.records)


async def wait_for_log(
    caplog: pytest.LogCaptureFixture, text: str, timeout_s: float = REQUEST_DEADLINE_S
) -> None:
    await wait_until(lambda: any(text in r.getMessage() for r in caplog.records), timeout_s)


async def num_served(deployment: Deployment, worker_id: str) -> float:
    """Decode calls `worker_id` answered, as the router's /metrics counts them."""
    labels = {"worker": worker_id, "stage": "decode", "status": "ok"}
    return await counted(deployment, "triskel_worker_requests_total", labels)


async def counted(deployment: Deployment, name: str, labels: dict[str, str] | None = None) -> float:
    """The sum of the router's `name` samples that carry `labels`, from its /metrics."""
    url = f"{deployment.base_url}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and (labels or {}).items() <= sample.labels.items()
    )
