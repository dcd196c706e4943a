"""What the router adds: the same open-loop load through the router and straight to a worker.

One unified mock worker runs in its own process; the router runs in another, in
front of it. The client (this process) sends the same requests at a fixed rate,
once through the router's gRPC `Generate` and once straight to the worker's
`Decode`, and measures TTFT at the client. The difference is the router's cost:
parsing, tokenizing, scheduling and relaying. A second phase measures how many
tokens per second the router can relay when the worker produces them instantly.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc

from triskel.cli.supervisor import Supervisor
from triskel.common.api import WorkerPoolSpec
from triskel.common.tokenizer import MockTokenizer
from triskel.router.process import RouterProcessConfig
from triskel.v1 import router_pb2, router_pb2_grpc, worker_pb2, worker_pb2_grpc
from triskel.workers.process import WorkerProcessConfig

MODEL = "bench"


@dataclass(frozen=True, slots=True)
class Sample:
    ttft_s: float
    e2e_s: float
    num_tokens: int


@dataclass(frozen=True, slots=True)
class LoadResult:
    target: str
    rate_per_s: float
    samples: list[Sample]
    wall_s: float

    @property
    def achieved_per_s(self) -> float:
        return len(self.samples) / self.wall_s

    def ttft_ms(self, quantile: float) -> float:
        values = sorted(s.ttft_s for s in self.samples)
        return 1000 * values[min(len(values) - 1, int(quantile * len(values)))]

    @property
    def tokens_per_s(self) -> float:
        return sum(s.num_tokens for s in self.samples) / self.wall_s


class Deployment:
    """One unified worker and a router in front of it, as child processes; the router
    calls the worker with frames, or with `worker_frames` False over gRPC."""

    def __init__(self, time_scale: float, worker_frames: bool = True) -> None:
        self._time_scale = time_scale
        self._worker_frames = worker_frames
        self._supervisor = Supervisor()
        self.worker_address = ""
        self.router_address = ""
        self.worker_http = ""
        self.router_http = ""

    async def __aenter__(self) -> Deployment:
        pool = WorkerPoolSpec.model_validate(
            {
                "role": "unified",
                "model": MODEL,
                "profile": {"kvCapacityTokens": 262_144, "timeScale": self._time_scale},
            }
        )
        worker = WorkerProcessConfig(worker_id="unified-0", pool=pool, http_address="127.0.0.1:0")
        child = await self._supervisor.start(
            "unified-0", "worker", worker.model_dump(mode="json", by_alias=True)
        )
        self.worker_address = child.ready["grpc"]
        self.worker_http = f"http://{child.ready['http']}"
        router = RouterProcessConfig(
            http_address="127.0.0.1:0",
            grpc_address="127.0.0.1:0",
            workers=[self.worker_address],
            worker_frames=self._worker_frames,
        )
        child = await self._supervisor.start(
            "router", "router", router.model_dump(mode="json", by_alias=True)
        )
        self.router_address = child.ready["grpc"]
        self.router_http = f"http://{child.ready['http']}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._supervisor.stop_all()


SendOne = Callable[[int], Coroutine[Any, Any, Sample]]


def via_router(channel: grpc.aio.Channel, prompts: list[str], max_tokens: int) -> SendOne:
    stub = router_pb2_grpc.RouterStub(channel)

    async def send(index: int) -> Sample:
        request = router_pb2.GenerateRequest(
            model=MODEL, prompt=prompts[index], max_tokens=max_tokens, ignore_eos=True
        )
        started = time.perf_counter()
        first = 0.0
        tokens = 0
        async for response in stub.Generate(request):
            if response.HasField("chunk"):
                first = first or time.perf_counter()
                tokens += len(response.chunk.token_ids)
        return Sample(first - started, time.perf_counter() - started, tokens)

    return send


def direct(channel: grpc.aio.Channel, prompts: list[str], max_tokens: int) -> SendOne:
    stub = worker_pb2_grpc.WorkerStub(channel)
    tokenizer = MockTokenizer()
    # The client tokenizes up front: the direct path gets no help from the router.
    token_ids = [tokenizer.encode(p) for p in prompts]

    async def send(index: int) -> Sample:
        request = worker_pb2.DecodeRequest(
            request_id=f"direct-{index}-{time.monotonic_ns()}",
            token_ids=token_ids[index],
            max_tokens=max_tokens,
            ignore_eos=True,
        )
        started = time.perf_counter()
        first = 0.0
        tokens = 0
        async for response in stub.Decode(request):
            if response.HasField("tokens"):
                first = first or time.perf_counter()
                tokens += len(response.tokens.token_ids)
        return Sample(first - started, time.perf_counter() - started, tokens)

    return send


def via_http(
    session: aiohttp.ClientSession, base_url: str, prompts: list[str], max_tokens: int
) -> SendOne:
    """Streamed completions from an OpenAI-compatible server (the router's or the
    worker's own vLLM-compatible API); tokens counted from the final usage chunk."""

    async def send(index: int) -> Sample:
        body = {
            "model": MODEL,
            "prompt": prompts[index],
            "max_tokens": max_tokens,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        started = time.perf_counter()
        first = 0.0
        tokens = 0
        async with session.post(f"{base_url}/v1/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.content:
                if not line.startswith(b"data: {"):
                    continue
                first = first or time.perf_counter()
                usage = json.loads(line[6:]).get("usage")
                if usage:
                    tokens = usage["completion_tokens"]
        return Sample(first - started, time.perf_counter() - started, tokens)

    return send


async def open_loop(target: str, send: SendOne, rate_per_s: float, count: int) -> LoadResult:
    """Sends `count` requests at a fixed rate regardless of completions (open loop)."""
    started = time.perf_counter()
    tasks: list[asyncio.Task[Sample]] = []
    for index in range(count):
        delay = started + index / rate_per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(index)))
    samples = await asyncio.gather(*tasks)
    return LoadResult(target, rate_per_s, list(samples), time.perf_counter() - started)


def prompts(count: int, words: int, phase: str) -> list[str]:
    """Distinct prompts, also across phases, so no phase hits another's prefix cache."""
    return [
        f"{phase} request {i}: " + " ".join(f"w{i}x{j}" for j in range(words)) for i in range(count)
    ]


async def measure_overhead(
    rate_per_s: float, count: int, max_tokens: int, prompt_words: int, worker_frames: bool = True
) -> tuple[LoadResult, LoadResult]:
    """The same open-loop load through the router and straight to the worker."""
    async with Deployment(time_scale=1.0, worker_frames=worker_frames) as deployment:
        async with grpc.aio.insecure_channel(deployment.worker_address) as worker_channel:
            warm = prompts(10, prompt_words, "warm-direct")
            await open_loop("warm-up", direct(worker_channel, warm, 4), rate_per_s, 10)
            texts = prompts(count, prompt_words, "direct")
            send = direct(worker_channel, texts, max_tokens)
            straight = await open_loop("straight to the worker", send, rate_per_s, count)
        async with grpc.aio.insecure_channel(deployment.router_address) as router_channel:
            warm = prompts(10, prompt_words, "warm-routed")
            await open_loop("warm-up", via_router(router_channel, warm, 4), rate_per_s, 10)
            texts = prompts(count, prompt_words, "routed")
            send = via_router(router_channel, texts, max_tokens)
            routed = await open_loop("through the router", send, rate_per_s, count)
    return routed, straight


# One burst of 32 streams of 256 instant tokens lasts a fraction of a second: a relay
# figure is the sum of bursts over at least this long, so one slow burst does not decide it.
RELAY_MIN_S = 3.0


async def measure_relay(
    concurrency: int, max_tokens: int, worker_frames: bool = True, api: str = "grpc"
) -> tuple[LoadResult, LoadResult]:
    """Tokens/s relayed when the worker generates instantly (time scale 0): bursts of
    `concurrency` streams, one after another for RELAY_MIN_S, through the router and
    straight to the worker, alternating. `api` "grpc": the router's `Generate` against
    the worker's `Decode`; "http": both OpenAI-compatible APIs (streamed completions)."""
    deployment = Deployment(time_scale=0.0, worker_frames=worker_frames)
    async with (
        deployment,
        grpc.aio.insecure_channel(deployment.worker_address) as worker_channel,
        grpc.aio.insecure_channel(deployment.router_address) as router_channel,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
    ):

        def senders(round_index: int) -> tuple[SendOne, SendOne]:
            straight = prompts(concurrency, 20, f"relay-direct-{round_index}")
            routed = prompts(concurrency, 20, f"relay-routed-{round_index}")
            if api == "http":
                return (
                    via_http(session, deployment.worker_http, straight, max_tokens),
                    via_http(session, deployment.router_http, routed, max_tokens),
                )
            return (
                direct(worker_channel, straight, max_tokens),
                via_router(router_channel, routed, max_tokens),
            )

        bursts: dict[str, list[LoadResult]] = {"straight": [], "routed": []}
        round_index = 0
        while round_index < 2 or sum(r.wall_s for r in bursts["routed"]) < RELAY_MIN_S:
            to_worker, to_router = senders(round_index)
            bursts["straight"].append(
                await open_loop("straight to the worker", to_worker, 1e9, concurrency)
            )
            bursts["routed"].append(
                await open_loop("through the router", to_router, 1e9, concurrency)
            )
            round_index += 1
    routed, straight = (_summed(bursts[k]) for k in ("routed", "straight"))
    return routed, straight


def _summed(results: list[LoadResult]) -> LoadResult:
    """Bursts as one result: every sample, the bursts' wall time added up."""
    samples = [sample for result in results for sample in result.samples]
    return LoadResult(
        results[0].target, results[0].rate_per_s, samples, sum(r.wall_s for r in results)
    )


def median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)
