"""Triskel's router driving workers over vLLM's HTTP API: unified, P/D, retries, load.

The workers are mock workers serving the vLLM-compatible API on real sockets; the
router treats them exactly as it would real vLLM (`http://` URLs, kv_transfer_params,
/metrics), so these are the tests of the `vllm` backend end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai
import pytest

from triskel.common.api import Role
from triskel.common.routing_api import RoutingSettings
from triskel.router.backends.vllm_worker import VllmWorkerClient
from triskel.router.process import RouterEndpoints, RouterProcessConfig, run_router

from support.local_workers import (
    LocalWorker,
    local_worker,
    mock_pool,
    post_json,
    scrape,
    worker_metric,
)

MODEL = "m"
# About 100 tokens: several KV blocks move from prefill to decode.
PROMPT = "Disaggregated serving moves the prompt's KV from the prefill worker to decode. " * 6
STARTUP_TIMEOUT_S = 30.0


@contextlib.asynccontextmanager
async def router(
    workers: Sequence[str | dict[str, Any]], routing: dict[str, Any] | None = None
) -> AsyncIterator[str]:
    """A router in front of `workers`; yields its HTTP base URL."""
    config = RouterProcessConfig.model_validate(
        {
            "httpAddress": "127.0.0.1:0",
            "grpcAddress": "127.0.0.1:0",
            "workers": list(workers),
            "routing": RoutingSettings.model_validate(routing or {}),
        }
    )
    stop = asyncio.Event()
    ready: asyncio.Future[RouterEndpoints] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_router(config, ready.set_result, stop))
    try:
        waiters: list[asyncio.Future[Any]] = [ready, task]
        await asyncio.wait(waiters, timeout=STARTUP_TIMEOUT_S, return_when="FIRST_COMPLETED")
        if task.done():
            task.result()
        yield f"http://{ready.result().http_address}"
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


def http_pool(role: str) -> dict[str, Any]:
    return mock_pool(role, kv_capacity_tokens=8192)


async def http_worker(stack: contextlib.AsyncExitStack, role: str, worker_id: str) -> LocalWorker:
    """A worker of `role` serving vLLM's HTTP API until the test's stack closes."""
    worker = local_worker(http_pool(role), worker_id, http_address="127.0.0.1:0")
    return await stack.enter_async_context(worker)


def calls_by_stage(router_metrics: dict[Any, float], status: str | None = None) -> dict[str, float]:
    """The router's worker calls per stage (of one status, or all)."""
    calls: dict[str, float] = {}
    for (name, labels), value in router_metrics.items():
        fields = dict(labels)
        if name == "triskel_worker_requests_total" and status in (None, fields["status"]):
            calls[fields["stage"]] = calls.get(fields["stage"], 0.0) + value
    return calls


async def kv_received_bytes(worker: LocalWorker) -> float:
    metrics = await scrape(f"{worker.http_url}/metrics")
    return metrics.get(worker_metric("triskel_worker_kv_received_bytes_total"), 0.0)


async def completion_text(base_url: str, max_tokens: int = 6) -> str:
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="none", max_retries=0)
    async with client:
        reply = await client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=max_tokens)
    return reply.choices[0].text


@pytest.mark.asyncio
async def test_pd_over_kv_transfer_params_gives_the_unified_answer_and_moves_kv() -> None:
    async with contextlib.AsyncExitStack() as stack:
        unified = await http_worker(stack, "unified", "u0")
        prefill = await http_worker(stack, "prefill", "p0")
        decode = await http_worker(stack, "decode", "d0")
        # Outputs are deterministic per prompt: the unified worker's answer is the reference.
        expected = await completion_text(unified.http_url)
        base_url = await stack.enter_async_context(
            router(
                [prefill.http_url, {"url": decode.http_url, "api": "vllm", "role": "decode"}],
                {"disaggregation": {"mode": "always"}},
            )
        )
        assert await completion_text(base_url) == expected

        client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="none", max_retries=0)
        async with client:
            stream = await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": PROMPT}],
                max_tokens=5,
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [chunk async for chunk in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = chunks[-1].usage
        assert text and usage is not None
        # The decode worker streams the first token again (vLLM's protocol): counted once.
        assert usage.completion_tokens == 5
        # Two P/D requests: each pulled the prompt's KV over the connector (real bytes).
        assert await kv_received_bytes(decode) > 0
        router_metrics = await scrape(f"{base_url}/metrics")
        assert calls_by_stage(router_metrics, "ok") == {"prefill": 2.0, "decode": 2.0}
        # The decode worker reports each pull in its answer's headers.
        moved = sum(
            value
            for (name, _), value in router_metrics.items()
            if name == "triskel_kv_transfer_bytes_total"
        )
        assert moved == await kv_received_bytes(decode)


@pytest.mark.asyncio
async def test_a_dead_prefill_worker_is_avoided_and_the_request_served_by_another() -> None:
    # Its /metrics scrape fails within one stats period (it leaves the candidates), and
    # a pick that raced it would be retried on the other worker before the first token.
    async with contextlib.AsyncExitStack() as stack:
        dead = await http_worker(stack, "prefill", "p-dead")
        alive = await http_worker(stack, "prefill", "p-alive")
        decode = await http_worker(stack, "decode", "d0")
        base_url = await stack.enter_async_context(
            router(
                [dead.http_url, alive.http_url, decode.http_url],
                {"disaggregation": {"mode": "always"}, "maxAttempts": 2},
            )
        )
        await dead.stop()
        assert await completion_text(base_url)
        assert await kv_received_bytes(decode) > 0


@pytest.mark.asyncio
async def test_with_every_prefill_worker_dead_the_client_gets_a_clear_503() -> None:
    async with contextlib.AsyncExitStack() as stack:
        prefill = await http_worker(stack, "prefill", "p0")
        decode = await http_worker(stack, "decode", "d0")
        base_url = await stack.enter_async_context(
            router([prefill.http_url, decode.http_url], {"disaggregation": {"mode": "always"}})
        )
        await prefill.stop()
        status, body = await post_json(
            f"{base_url}/v1/completions", {"model": MODEL, "prompt": PROMPT, "max_tokens": 4}
        )
        assert status == 503, body
        assert "prefill" in body["error"]["message"]


@pytest.mark.asyncio
async def test_load_comes_from_the_workers_metrics() -> None:
    async with local_worker(
        mock_pool("unified", time_scale=1.0), "u0", http_address="127.0.0.1:0"
    ) as worker:
        client = VllmWorkerClient(worker.http_url)
        identity = await client.connect(5.0)
        # A mock worker describes itself; real vLLM would need role and block size given.
        assert (identity.worker_id, identity.role, identity.model) == ("u0", Role.UNIFIED, MODEL)
        body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 200, "ignore_eos": True}
        running = asyncio.create_task(post_json(f"{worker.http_url}/v1/completions", body))
        try:
            async with asyncio.timeout(10):
                async for load in client.watch_load(20):
                    if load.num_running_requests == 1:
                        break
            assert load.num_kv_blocks > 0
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await client.close()


@pytest.mark.asyncio
async def test_the_config_overrides_what_a_worker_says_of_itself() -> None:
    # Real vLLM says neither role nor P/D: the router's config (a pool's spec) gives them.
    async with local_worker(http_pool("unified"), "u0", http_address="127.0.0.1:0") as worker:
        client = VllmWorkerClient(worker.http_url, role=Role.DECODE, model="other")
        identity = await client.connect(5.0)
        assert (identity.role, identity.model) == (Role.DECODE, "other")
        await client.close()


@pytest.mark.asyncio
async def test_without_kv_events_what_the_router_sent_counts_as_cached() -> None:
    # vLLM-API workers publish no KV events: the decode worker that took a prompt's KV
    # is assumed to cache it, so a repeat of the prompt prefills there (16 tokens left).
    async with contextlib.AsyncExitStack() as stack:
        prefill = await http_worker(stack, "prefill", "p0")
        decode = await http_worker(stack, "decode", "d0")
        base_url = await stack.enter_async_context(
            router(
                [prefill.http_url, decode.http_url],
                {"disaggregation": {"mode": "conditional", "maxLocalPrefillTokens": 16}},
            )
        )
        first = await completion_text(base_url)
        assert await completion_text(base_url) == first
        metrics = await scrape(f"{base_url}/metrics")
        assert calls_by_stage(metrics).get("prefill") == 1.0
