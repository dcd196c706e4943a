"""A worker that dies mid-request gives the client a clear error, never a hang."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio

from triskel.cli.supervisor import Child, Supervisor
from triskel.cli.up import worker_configs, write_kv_auth_key
from triskel.cli.up_config import parse_up_config
from triskel.router.process import RouterEndpoints, RouterProcessConfig, run_router
from triskel.v1 import worker_pb2, worker_pb2_grpc

PROFILE = "{name: llama-3.1-8b-h100, kvCapacityTokens: 65536}"
POOLS = f"""
pools:
  - {{name: prefill, role: prefill, model: m, profile: {PROFILE}}}
  - {{name: decode, role: decode, model: m, profile: {PROFILE}}}
"""


@contextlib.asynccontextmanager
async def running(pools_yaml: str) -> AsyncIterator[tuple[str, dict[str, Child]]]:
    """Workers as real processes (so one can be killed), the router in-process."""
    supervisor = Supervisor()
    key_folder = tempfile.TemporaryDirectory(prefix="triskel-kv-")
    # One KV key for the run's workers, as `triskel up` gives them: P/D pulls need it.
    key_file = str(write_kv_auth_key(Path(key_folder.name) / "kv-auth-key"))
    stop = asyncio.Event()
    router_task = None
    try:
        children = {}
        for worker in worker_configs(parse_up_config(pools_yaml, "<test>")):
            worker = worker.model_copy(update={"kv_auth_key_file": key_file})
            children[worker.worker_id] = await supervisor.start(
                worker.worker_id, "worker", worker.model_dump(mode="json", by_alias=True)
            )
        ready: asyncio.Future[RouterEndpoints] = asyncio.get_running_loop().create_future()
        config = RouterProcessConfig(
            http_address="127.0.0.1:0",
            grpc_address="127.0.0.1:0",
            workers=[c.ready["grpc"] for c in children.values()],
        )
        router_task = asyncio.create_task(run_router(config, ready.set_result, stop))
        endpoints = await asyncio.wait_for(ready, 60)
        yield f"http://{endpoints.http_address}", children
    finally:
        stop.set()
        if router_task is not None:
            await asyncio.gather(router_task, return_exceptions=True)
        await supervisor.stop_all()
        key_folder.cleanup()


@pytest_asyncio.fixture
async def deployment() -> AsyncIterator[tuple[str, dict[str, Child]]]:
    async with running(POOLS) as started:
        yield started


@pytest.mark.asyncio
async def test_decode_worker_killed_mid_stream_ends_the_stream_with_an_error_event(
    deployment: tuple[str, dict[str, Child]],
) -> None:
    base_url, children = deployment
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "Write a very long story."}],
        "max_tokens": 4000,
        "ignore_eos": True,
        "stream": True,
    }
    events: list[dict[str, object]] = []

    async def consume() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{base_url}/v1/chat/completions", json=body) as response,
        ):
            assert response.status == 200
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith("data: ") and line != "data: [DONE]":
                    events.append(json.loads(line[len("data: ") :]))
                    if len(events) == 10:
                        os.kill(children["decode-0"].process.pid, signal.SIGKILL)

    # The deadline is the assertion that nothing hangs.
    await asyncio.wait_for(consume(), 60)
    assert 10 <= len(events) < 4000
    error = events[-1].get("error")
    assert isinstance(error, dict), events[-1]
    assert "decode" in str(error["message"])


@pytest.mark.asyncio
async def test_prefill_worker_gone_before_the_request_is_a_503(
    deployment: tuple[str, dict[str, Child]],
) -> None:
    base_url, children = deployment
    prefill = children["prefill-0"].process
    prefill.send_signal(signal.SIGKILL)
    await prefill.wait()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/v1/chat/completions", json=body) as response,
    ):
        payload = await asyncio.wait_for(response.json(), 30)
    assert response.status == 503
    assert "prefill" in payload["error"]["message"]


# Slow prefill (20× the modelled time) so a worker can be killed while it prefills.
SLOW = "{name: llama-3.1-8b-h100, kvCapacityTokens: 65536, timeScale: 20}"
TWO_PREFILL = f"""
pools:
  - {{name: prefill, role: prefill, model: m, replicas: {{min: 2, max: 2}}, profile: {SLOW}}}
  - {{name: decode, role: decode, model: m, profile: {PROFILE}}}
"""


@pytest.mark.asyncio
async def test_prefill_worker_killed_before_the_first_token_is_retried_elsewhere() -> None:
    async with running(TWO_PREFILL) as (base_url, children):
        body = {
            "model": "m",
            "prompt": "A long document to summarise. " * 300,
            "max_tokens": 8,
        }
        async with aiohttp.ClientSession() as session:
            request = asyncio.create_task(session.post(f"{base_url}/v1/completions", json=body))
            busy = await _busy_prefill_worker(children)
            os.kill(children[busy].process.pid, signal.SIGKILL)
            response = await asyncio.wait_for(request, 60)
            payload = await response.json()
        assert response.status == 200, payload
        assert payload["usage"]["completion_tokens"] == 8
        metrics = await _get(f"{base_url}/metrics")
        assert 'triskel_router_retries_total{stage="prefill"} 1.0' in metrics


async def _busy_prefill_worker(children: dict[str, Child]) -> str:
    """The prefill worker whose queue or batch holds the request, by its own stats."""
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        for worker_id in ("prefill-0", "prefill-1"):
            async with grpc.aio.insecure_channel(children[worker_id].ready["grpc"]) as channel:
                stats = worker_pb2_grpc.WorkerStub(channel).StreamStats(
                    worker_pb2.StreamStatsRequest()
                )
                load = await anext(aiter(stats))
                stats.cancel()
            if load.num_running_requests or load.num_waiting_requests:
                return worker_id
        await asyncio.sleep(0.02)
    raise AssertionError("no prefill worker picked the request up")


async def _get(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()
