"""Triskel's mock workers behind the real peer routers: SGLang's `smg` and `vllm-router`.

The workers' vLLM-compatible HTTP API is meant to be a drop-in backend for other
routers; these tests hold it to that with the pinned peer binaries (never skipped:
CI installs them with scripts/install_peer_routers.sh, and the first test here does
when they are missing). What each checks is what the peer needs from a worker:
streaming, prefix-aware placement, and P/D hand-off, smg's by bootstrap rooms and
vllm-router's by kv_transfer_params, with the KV really moving between workers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from triskel.cli.supervisor import Supervisor
from triskel.common.sse import SseDecoder

from support.peer_routers import (
    HttpWorker,
    Peer,
    PeerLayout,
    PeerRouter,
    peer_command,
    start_http_worker,
    worker_totals,
)

MODEL = "m"
PEERS = list(Peer)
NUM_OUTPUT_TOKENS = 8
REQUEST_TIMEOUT_S = 30.0
# A long shared prefix (about 2,000 characters, 500 tokens) and short distinct questions:
# a cache-aware router sees most of each prompt already sent to one worker.
SHARED_PREFIX = "".join(f"Rule {i}: answer in short plain words. " for i in range(52))
NUM_SHARED_PREFIX_REQUESTS = 8
# Several KV blocks' worth of prompt, so a P/D hand-off has blocks to move.
PD_PROMPT = "Summarise why prefill and decode run on different workers. " * 8


def pool(role: str) -> dict[str, Any]:
    # Modelled latency 100× faster than the H100 it models: requests take milliseconds.
    return {
        "role": role,
        "model": MODEL,
        "profile": {"kvCapacityTokens": 32768, "timeScale": 0.01},
    }


@contextlib.asynccontextmanager
async def http_workers(roles: Sequence[str]) -> AsyncIterator[list[HttpWorker]]:
    """One worker per role (ids w0, w1, ...), each its own process; prefill ones get a
    bootstrap listener for smg's P/D."""
    supervisor = Supervisor()
    try:
        workers = [
            await start_http_worker(supervisor, f"w{i}", pool(role), role == "prefill")
            for i, role in enumerate(roles)
        ]
        yield workers
    finally:
        await supervisor.stop_all()


def openai_client(router: PeerRouter) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{router.url}/v1", api_key="unused", max_retries=0, timeout=REQUEST_TIMEOUT_S
    )


async def stream_chat(router: PeerRouter, content: str) -> tuple[str, str | None, int | None]:
    """A streamed chat completion through the official client: text, finish reason,
    the usage chunk's completion tokens."""
    text, finish_reason, completion_tokens = "", None, None
    async with openai_client(router) as client:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": content}],
            max_tokens=NUM_OUTPUT_TOKENS,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"ignore_eos": True},
        )
        async for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish_reason = choice.finish_reason or finish_reason
            if chunk.usage is not None:
                completion_tokens = chunk.usage.completion_tokens
    return text, finish_reason, completion_tokens


async def raw_chat_events(router: PeerRouter, content: str) -> list[str]:
    """The data of every SSE event of a streamed chat completion, as sent."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": NUM_OUTPUT_TOKENS,
        "stream": True,
    }
    decoder, events = SseDecoder(), []
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"{router.url}/v1/chat/completions", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        async for chunk in response.content.iter_any():
            events += decoder.feed(chunk)
    return events


async def assert_streams_whole(router: PeerRouter) -> None:
    text, finish_reason, completion_tokens = await stream_chat(router, "Say something short.")
    # ignore_eos: exactly max_tokens tokens, and "length" says the limit ended it.
    assert text.strip()
    assert finish_reason == "length"
    assert completion_tokens == NUM_OUTPUT_TOKENS
    events = await raw_chat_events(router, "Say something else.")
    assert events[-1] == "[DONE]", events[-3:]
    assert "[DONE]" not in events[:-1]
    assert len(events) > 1


@pytest.mark.asyncio
@pytest.mark.parametrize("peer", PEERS)
async def test_a_streamed_chat_completion_through_the_peer_arrives_whole(peer: Peer) -> None:
    async with (
        http_workers(["unified", "unified"]) as workers,
        PeerRouter(peer, PeerLayout(unified=tuple(workers)), "round_robin") as router,
    ):
        await assert_streams_whole(router)


@pytest.mark.asyncio
@pytest.mark.parametrize("peer", PEERS)
async def test_cache_aware_sends_requests_sharing_a_long_prefix_to_one_worker(peer: Peer) -> None:
    async with (
        http_workers(["unified", "unified"]) as workers,
        PeerRouter(peer, PeerLayout(unified=tuple(workers)), "cache_aware") as router,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session,
    ):
        # Counted by the workers themselves, not by the router under test.
        before = await worker_totals(session, workers, "vllm:request_success_total")
        # One at a time: both peers only trade affinity for balance under load.
        for i in range(NUM_SHARED_PREFIX_REQUESTS):
            body = {"model": MODEL, "prompt": f"{SHARED_PREFIX}Question {i}?", "max_tokens": 2}
            async with session.post(f"{router.url}/v1/completions", json=body) as response:
                assert response.status == 200, await response.text()
        served: dict[str, float] = {}

        async def counted() -> bool:
            after = await worker_totals(session, workers, "vllm:request_success_total")
            served.update({w: after[w] - before[w] for w in after})
            return sum(served.values()) >= NUM_SHARED_PREFIX_REQUESTS

        await wait_until_async(counted)
        assert sorted(served.values()) == [0, NUM_SHARED_PREFIX_REQUESTS], served


@pytest.mark.asyncio
@pytest.mark.parametrize("peer", PEERS)
async def test_a_disaggregated_request_moves_kv_from_prefill_to_decode(peer: Peer) -> None:
    async with http_workers(["prefill", "decode"]) as (prefill, decode):
        layout = PeerLayout(prefill=(prefill,), decode=(decode,))
        async with (
            PeerRouter(peer, layout, "round_robin") as router,
            aiohttp.ClientSession() as session,
        ):
            received = "triskel_worker_kv_received_bytes_total"
            before = (await worker_totals(session, [decode], received))[decode.worker_id]
            text, finish_reason, completion_tokens = await stream_chat(router, PD_PROMPT)
            after = (await worker_totals(session, [decode], received))[decode.worker_id]
    # The decode worker's output starts with the prefill's first token: all of it arrives.
    assert text.strip()
    assert (finish_reason, completion_tokens) == ("length", NUM_OUTPUT_TOKENS)
    assert after > before


async def wait_until_async(
    condition: Callable[[], Awaitable[bool]], timeout_s: float = 10.0
) -> None:
    """`wait_until` for a condition that needs I/O to check (a metrics scrape)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    # Polling is the point: the counters live in other processes.
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("peer", "expected_tail"),
    [
        # smg moves KV by bootstrap rooms: the prefill's bootstrap port follows its URL.
        (
            Peer.SMG,
            ["--pd-disaggregation", "--prefill", "http://p", "9000", "--decode", "http://d"],
        ),
        # vllm-router moves KV by kv_transfer_params and takes no bootstrap port.
        (
            Peer.VLLM_ROUTER,
            ["--vllm-pd-disaggregation", "--prefill", "http://p", "--decode", "http://d"],
        ),
    ],
)
def test_the_pd_command_line_names_each_peer_s_own_flags(
    peer: Peer, expected_tail: list[str]
) -> None:
    layout = PeerLayout(
        prefill=(HttpWorker("p", "prefill", "http://p", "p:50051", bootstrap_port=9000),),
        decode=(HttpWorker("d", "decode", "http://d", "d:50051"),),
    )
    command = peer_command(peer, Path("/bin/peer"), layout, "cache_aware", 1, 2)
    assert command[-len(expected_tail) :] == expected_tail
    # Loopback only, for the router and for its Prometheus listener alike.
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--prometheus-host") + 1] == "127.0.0.1"
