"""The router in cluster mode, against an emulated API server (kmock) and real workers:
it finds workers in WorkerPool status, follows them as they come and go, and reloads
its routing policy from the operator's config file without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import pytest

from triskel.router.process import RouterEndpoints, RouterProcessConfig, run_router

from support.kube_emulator import NAMESPACE, collection_path, create, declare_resources
from support.local_workers import local_workers

POOL_SPEC = {"role": "unified", "model": "m", "profile": {"timeScale": 0.01}}
ROUND_ROBIN = {
    "plugins": [{"type": "round-robin-picker"}],
    "profiles": [{"name": "unified", "plugins": [{"pluginRef": "round-robin-picker"}]}],
}


def router_config(policy: dict[str, Any] | None) -> str:
    graph = {
        "namespace": NAMESPACE,
        "name": "g",
        "model": "m",
        "slo": {"ttftMs": 2000, "tpotMs": 100, "attainment": 0.9},
        "disaggregation": {"mode": "always", "maxLocalPrefillTokens": 512},
        "routingPolicy": "p" if policy else None,
        "pools": [
            {
                "name": "uni",
                "role": "unified",
                "model": "m",
                "engine": "mock",
                "service": "uni.default.svc.cluster.local",
                "ports": {"grpc": 50051},
            }
        ],
    }
    policies = [{"namespace": NAMESPACE, "name": "p", "spec": policy}] if policy else []
    return json.dumps({"graphs": [graph], "routingPolicies": policies})


@contextlib.asynccontextmanager
async def router(config_file: Path, api_url: str) -> AsyncIterator[str]:
    stop = asyncio.Event()
    ready: asyncio.Future[RouterEndpoints] = asyncio.get_running_loop().create_future()
    config = RouterProcessConfig(
        http_address="127.0.0.1:0",
        grpc_address="127.0.0.1:0",
        cluster_config=config_file,
        kube_api_url=api_url,
    )
    task = asyncio.create_task(run_router(config, ready.set_result, stop))
    try:
        endpoints = await asyncio.wait_for(ready, 30)
        yield f"http://{endpoints.http_address}"
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


async def set_endpoints(server: kmock.KubernetesEmulator, endpoints: list[str]) -> None:
    path = collection_path("triskel.io/v1alpha1", "workerpools") + "/uni"
    response = await server.patch(path, json={"status": {"endpoints": endpoints}})
    assert response.status < 300


async def complete(base_url: str) -> int:
    body = {"model": "m", "prompt": "hello there", "max_tokens": 2}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/v1/completions", json=body) as response,
    ):
        await response.read()
        return response.status


async def decisions(base_url: str) -> dict[tuple[str, str], float]:
    """(reason, worker) → count, from the router's metrics."""
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/metrics") as r:
        text = await r.text()
    found: dict[tuple[str, str], float] = {}
    pattern = r"^triskel_router_decisions_total\{([^}]*)\} (\S+)$"
    for labels, value in re.findall(pattern, text, re.M):
        parsed = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = (parsed["reason"], parsed["worker"])
        found[key] = found.get(key, 0.0) + float(value)
    return found


async def eventually_async(check: Any, timeout_s: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_workers_come_and_go_with_the_pool_status_and_policies_reload(
    kmock: kmock.KubernetesEmulator, tmp_path: Path
) -> None:
    declare_resources(kmock)
    config_file = tmp_path / "router-config.json"
    config_file.write_text(router_config(None))
    async with local_workers(POOL_SPEC, 2) as (first, second):
        await create(
            kmock,
            {
                "apiVersion": "triskel.io/v1alpha1",
                "kind": "WorkerPool",
                "metadata": {"name": "uni"},
                "spec": POOL_SPEC,
                "status": {"endpoints": [first]},
            },
        )
        async with router(config_file, str(kmock.url).rstrip("/")) as base_url:
            # One worker listed: served by it, with the shipped default's max-score
            # picker (no policy yet).
            await eventually_async(lambda: _ok(base_url))
            assert set(await decisions(base_url)) == {("max-score", "w0")}

            # A second worker appears in the pool's status: both serve.
            await set_endpoints(kmock, [first, second])

            async def both_used() -> bool:
                await complete(base_url)
                return {w for _, w in await decisions(base_url)} == {"w0", "w1"}

            await eventually_async(both_used)

            # The policy changes: the next picks use it, with no restart.
            config_file.write_text(router_config(ROUND_ROBIN))

            async def reloaded() -> bool:
                await complete(base_url)
                return any(r == "round-robin" for r, _ in await decisions(base_url))

            await eventually_async(reloaded)

            # The first worker leaves (drained): nothing goes to it any more.
            await set_endpoints(kmock, [second])
            await asyncio.sleep(2.5)  # one discovery round
            before = await decisions(base_url)
            for _ in range(5):
                assert await complete(base_url) == 200
            after = await decisions(base_url)
            assert sum(after.values()) - sum(before.values()) == 5
            assert all(after[k] == before.get(k) for k in after if k[1] == "w0")


async def _ok(base_url: str) -> bool:
    return await complete(base_url) == 200


async def stream_tokens(base_url: str, max_tokens: int) -> tuple[int, str | None]:
    """One streamed completion to its end: (tokens streamed, finish reason); raises when
    the stream breaks (the router cut the worker off mid-stream). A chunk may carry
    several tokens (the worker sends the tokens made while it was sending), so the
    tokens are the usage chunk's count."""
    body = {
        "model": "m",
        "prompt": "tell me a long story",
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream_options": {"include_usage": True},
    }
    tokens, finish = 0, None
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/v1/completions", json={**body, "stream": True}) as response,
    ):
        assert response.status == 200
        async for raw in response.content:
            line = raw.decode().strip()
            if line == "data: [DONE]":
                return tokens, finish
            if line.startswith("data: "):
                chunk = json.loads(line.removeprefix("data: "))
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
                for choice in chunk["choices"]:
                    finish = choice.get("finish_reason") or finish
    raise AssertionError(f"the stream ended without [DONE] after {tokens} tokens")


@pytest.mark.asyncio
async def test_a_worker_that_leaves_finishes_the_streams_it_is_serving(
    kmock: kmock.KubernetesEmulator, tmp_path: Path
) -> None:
    # A scale-in removes a worker from the pool's status while it still streams: the
    # router stops picking it but keeps its connection until those streams end.
    declare_resources(kmock)
    config_file = tmp_path / "router-config.json"
    config_file.write_text(router_config(None))
    slow = {**POOL_SPEC, "profile": {"timeScale": 1.0}}
    async with local_workers(slow, 2) as (first, second):
        await create(
            kmock,
            {
                "apiVersion": "triskel.io/v1alpha1",
                "kind": "WorkerPool",
                "metadata": {"name": "uni"},
                "spec": slow,
                "status": {"endpoints": [first]},
            },
        )
        async with router(config_file, str(kmock.url).rstrip("/")) as base_url:
            await eventually_async(lambda: _ok(base_url))
            started = asyncio.get_running_loop().time()
            long = asyncio.create_task(stream_tokens(base_url, 400))
            await asyncio.sleep(0.5)  # streaming from the first worker, the only one
            await set_endpoints(kmock, [second])
            await eventually_async(lambda: _only_second_serves(base_url))
            assert not long.done(), "the stream must outlast the worker's removal"
            tokens, finish = await long
            assert (tokens, finish) == (400, "length")  # every token, then the finish
            assert asyncio.get_running_loop().time() - started > 2.0


async def _only_second_serves(base_url: str) -> bool:
    before = await decisions(base_url)
    assert await complete(base_url) == 200
    after = await decisions(base_url)
    return any(after[k] > before.get(k, 0) for k in after if k[1] == "w1")
