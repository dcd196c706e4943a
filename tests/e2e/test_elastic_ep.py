"""Elastic EP live: a `triskel worker` process simulating a DeepSeek-V2-Lite EP group of
4 ranks is scaled 4 → 6 → 4 through vLLM's `/scale_elastic_ep` under steady streaming
load, and not one request fails."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from triskel.cli.supervisor import READY_PREFIX

from support.processes import read_until, start_triskel

MODEL = "m"
# At a time scale of 0.03 the modelled 29 s scale-up takes ~0.9 s and the 7 s scale-down
# ~0.2 s; per-rank KV as the profile computes it (the arena is sized for EP 8).
POOL = {
    "role": "unified",
    "model": MODEL,
    "parallelism": {"ep": 4},
    "profile": {"name": "deepseek-v2-lite-ep-h100", "timeScale": 0.03},
}
NUM_CLIENTS = 4
BODY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Count the rivers of Europe."}],
    "max_tokens": 48,
    "ignore_eos": True,
    "stream": True,
    "stream_options": {"include_usage": True},
}
# 4 → 6: ranks 0-3 keep 11 of their 16 experts, 20 move; 6 → 4: ranks 4 and 5 hand
# their 10 experts each back. 20 experts x 450e6 B (DeepSeek-V2-Lite, 26 MoE layers).
BYTES_PER_STEP = 20 * 450_000_000
SCALE_TIMEOUT_S = 120.0


@dataclass(slots=True)
class Tally:
    finished: int = 0
    failures: list[str] | None = None

    def fail(self, why: str) -> None:
        if self.failures is None:
            self.failures = []
        self.failures.append(why)


@contextlib.asynccontextmanager
async def ep_worker() -> AsyncIterator[str]:
    """A `triskel worker` started as a pod starts it; yields its HTTP base URL."""
    process = await start_triskel(
        [
            "worker",
            "--pool-json",
            json.dumps(POOL),
            "--worker-id",
            "ep-group-0",
            "--grpc-address",
            "127.0.0.1:0",
            "--http-address",
            "127.0.0.1:0",
            "--kv-host",
            "127.0.0.1",
        ]
    )
    try:
        lines = await read_until(process, READY_PREFIX, timeout_s=90)
        ready: dict[str, Any] = json.loads(lines[-1].split(READY_PREFIX, 1)[1])
        yield f"http://{ready['http']}"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


async def stream_one(session: aiohttp.ClientSession, url: str, tally: Tally) -> None:
    async with session.post(f"{url}/v1/chat/completions", json=BODY) as reply:
        if reply.status != 200:
            tally.fail(f"status {reply.status}: {await reply.text()}")
            return
        num_tokens = None
        done = False
        async for raw in reply.content:
            line = raw.decode().strip()
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                chunk = json.loads(line.removeprefix("data: "))
                if "error" in chunk:
                    tally.fail(f"stream error: {chunk['error']}")
                    return
                if chunk.get("usage"):
                    num_tokens = chunk["usage"]["completion_tokens"]
        if not done or num_tokens != BODY["max_tokens"]:
            tally.fail(f"stream ended after {num_tokens} tokens (done: {done})")
            return
    tally.finished += 1


async def steady_load(url: str, stop: asyncio.Event, tally: Tally) -> None:
    """NUM_CLIENTS clients, each streaming one request after another until `stop`."""
    timeout = aiohttp.ClientTimeout(total=60)

    async def client() -> None:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not stop.is_set():
                try:
                    await stream_one(session, url, tally)
                except (aiohttp.ClientError, TimeoutError) as error:
                    tally.fail(f"{type(error).__name__}: {error}")

    await asyncio.gather(*(client() for _ in range(NUM_CLIENTS)))


async def ep_metrics(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with session.get(f"{url}/metrics") as reply:
        assert reply.status == 200
        text = await reply.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("triskel:ep_"):
            name_and_labels, value = line.rsplit(" ", 1)
            values[name_and_labels.split("{", 1)[0]] = float(value)
    return values


async def wait_for_finished(tally: Tally, count: int, timeout_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while tally.finished < count:
        assert loop.time() < deadline, f"only {tally.finished} requests finished"
        assert not tally.failures, tally.failures
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_scaling_4_6_4_under_load_fails_no_request() -> None:
    tally = Tally()
    stop = asyncio.Event()
    async with ep_worker() as url, aiohttp.ClientSession() as session:
        load = asyncio.create_task(steady_load(url, stop, tally))
        try:
            await wait_for_finished(tally, NUM_CLIENTS)
            for step, new_size in enumerate((6, 4), start=1):
                async with session.post(
                    f"{url}/scale_elastic_ep",
                    json={"new_data_parallel_size": new_size, "drain_timeout": 60},
                    timeout=aiohttp.ClientTimeout(total=SCALE_TIMEOUT_S),
                ) as reply:
                    assert reply.status == 200, await reply.text()
                    answer = await reply.json()
                assert answer["message"] == f"Scaled to {new_size} data parallel engines"
                assert answer["step"]["bytes_moved"] == BYTES_PER_STEP
                metrics = await ep_metrics(session, url)
                assert metrics["triskel:ep_size"] == new_size
                assert metrics["triskel:ep_scaling"] == 0
                assert metrics["triskel:ep_bytes_moved_total"] == step * BYTES_PER_STEP
                assert metrics["triskel:ep_experts_moved_total"] == step * 20
                # The new layout serves too.
                await wait_for_finished(tally, tally.finished + NUM_CLIENTS)
        finally:
            stop.set()
            await asyncio.wait_for(load, 90)
        async with session.get(f"{url}/server_info") as reply:
            info = await reply.json()
        assert info["ep_size"] == 4
        assert info["elastic_ep"]["experts_per_rank"] == [16, 16, 16, 16]
    assert tally.failures is None, tally.failures
    assert tally.finished >= 3 * NUM_CLIENTS
