"""Local pools under a live router: a killed worker is replaced while the others serve,
a scale-in drains before it stops, a scale-out joins without a restart, a prefill worker
becomes a decode worker without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from triskel.cli.local_pools import LocalPools
from triskel.cli.local_worker import PoolSettings
from triskel.cli.supervisor import RestartBackoff, Supervisor
from triskel.cli.up import write_kv_auth_key
from triskel.cli.up_config import parse_up_config
from triskel.common.local_membership import LocalMembership
from triskel.router.process import RouterEndpoints, RouterProcessConfig, run_router

from support.waiting import wait_until

UNIFIED = """
pools:
  - name: uni
    role: unified
    model: m
    replicas: {min: 1, max: 3, desired: 2}
    profile: {name: llama-3.1-8b-h100, kvCapacityTokens: 65536}
"""
# Same profile, KV capacity and connector in both pools: a worker of one can serve the other.
PD = """
pools:
  - name: prefill
    role: prefill
    model: m
    replicas: {min: 1, max: 3, desired: 2}
    kvConnector: {type: tcp}
    profile: {name: llama-3.1-8b-h100, kvCapacityTokens: 65536}
  - name: decode
    role: decode
    model: m
    replicas: {min: 1, max: 3, desired: 1}
    kvConnector: {type: tcp}
    profile: {name: llama-3.1-8b-h100, kvCapacityTokens: 65536}
"""
READY_TIMEOUT_S = 90.0


@dataclass
class Deployment:
    pools: LocalPools
    base_url: str

    def listed(self, pool: str | None = None) -> list[str]:
        """The endpoints the membership file gives the router now (of `pool`, or all)."""
        text = self.pools.membership_path.read_text()
        pools = LocalMembership.from_json(text).pools
        return [a for p in pools if pool in (None, p.name) for a in p.endpoints]

    def names(self, pool: str = "uni") -> list[str]:
        return sorted(child.name for child in self.pools.children(pool))


@contextlib.asynccontextmanager
async def deployment(
    tmp_path: Path, settings: PoolSettings, up_yaml: str = UNIFIED
) -> AsyncIterator[Deployment]:
    """Workers as real processes (so one can be killed), the router in-process on the
    membership file the pools write."""
    supervisor = Supervisor()
    config = parse_up_config(up_yaml, "<test>")
    # One KV key for the run's workers, as `triskel up` gives them: P/D pulls need it.
    key_file = write_kv_auth_key(tmp_path / "kv-auth-key")
    settings = dataclasses.replace(settings, kv_auth_key_file=str(key_file))
    pools = LocalPools(supervisor, config.pools, tmp_path / "membership.json", print, settings)
    stop = asyncio.Event()
    router_task = None
    try:
        await pools.start()
        ready: asyncio.Future[RouterEndpoints] = asyncio.get_running_loop().create_future()
        router_config = RouterProcessConfig(
            http_address="127.0.0.1:0",
            grpc_address="127.0.0.1:0",
            membership_file=pools.membership_path,
        )
        router_task = asyncio.create_task(run_router(router_config, ready.set_result, stop))
        endpoints = await asyncio.wait_for(ready, 60)
        yield Deployment(pools, f"http://{endpoints.http_address}")
    finally:
        stop.set()
        if router_task is not None:
            await asyncio.gather(router_task, return_exceptions=True)
        await pools.close()
        await supervisor.stop_all()


async def complete(base_url: str, max_tokens: int = 4) -> int:
    body = {"model": "m", "prompt": "hello there", "max_tokens": max_tokens}
    timeout = aiohttp.ClientTimeout(total=60)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"{base_url}/v1/completions", json=body) as response,
    ):
        await response.read()
        return response.status


async def stream_to_the_end(base_url: str, max_tokens: int) -> str | None:
    """Streams one completion; its finish reason. Raises if the stream breaks."""
    body = {
        "model": "m",
        "prompt": "tell me a long story",
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
    }
    chunks, finish = 0, None
    timeout = aiohttp.ClientTimeout(total=120)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"{base_url}/v1/completions", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        async for raw in response.content:
            line = raw.decode().strip()
            if line == "data: [DONE]":
                return finish
            if line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                assert "error" not in event, line
                finish = event["choices"][0].get("finish_reason") or finish
                chunks += 1
    raise AssertionError(f"the stream ended without [DONE] after {chunks} chunks")


@pytest.mark.asyncio
async def test_a_killed_worker_is_replaced_after_a_backoff_while_requests_keep_succeeding(
    tmp_path: Path,
) -> None:
    # A 2 s backoff leaves the pool one worker short for a while: requests sent then must
    # still succeed (the router retries a pick of the dead worker on the live one).
    settings = PoolSettings(worker_drain_timeout_s=2.0, restart=RestartBackoff(initial_s=2.0))
    async with deployment(tmp_path, settings) as live:
        assert await complete(live.base_url) == 200
        assert live.names() == ["uni-0", "uni-1"]
        victim = next(c for c in live.pools.children("uni") if c.name == "uni-0")
        os.kill(victim.pid, signal.SIGKILL)  # the PID the supervisor started, nothing else

        statuses: list[int] = []
        replaced = asyncio.Event()

        async def keep_asking() -> None:
            while not replaced.is_set():
                statuses.append(await complete(live.base_url))

        load = [asyncio.create_task(keep_asking()) for _ in range(2)]
        try:
            # The replacement has a new name and address, serves, and the router is given it.
            await wait_until(
                lambda: (
                    live.names() == ["uni-1", "uni-2"]
                    and live.pools.counts("uni").ready == 2
                    and victim.ready["grpc"] not in live.listed()
                    and len(live.listed()) == 2
                ),
                timeout_s=READY_TIMEOUT_S,
            )
            # A few more rounds with the replacement in the membership.
            settled = len(statuses)
            await wait_until(lambda: len(statuses) >= settled + 6, timeout_s=60)
        finally:
            replaced.set()
            await asyncio.gather(*load)
        assert victim.process.returncode == -signal.SIGKILL
        assert statuses and set(statuses) == {200}, statuses


@pytest.mark.asyncio
async def test_a_scale_in_drains_the_streams_on_the_leaving_worker_before_stopping_it(
    tmp_path: Path,
) -> None:
    settings = PoolSettings(worker_drain_timeout_s=2.0)
    async with deployment(tmp_path, settings) as live:
        # Four long streams, round-robin: two on each worker.
        streams = [
            asyncio.create_task(stream_to_the_end(live.base_url, max_tokens=400)) for _ in range(4)
        ]
        await wait_until(lambda: live.pools.counts("uni").ready == 2, timeout_s=10)
        await asyncio.sleep(0.5)  # let the streams reach their workers
        leaving = next(c for c in live.pools.children("uni") if c.name == "uni-1")
        live.pools.scale("uni", 1)
        # Out of the membership at once; still running while its streams go on.
        assert leaving.ready["grpc"] not in live.listed()
        assert live.pools.counts("uni").ready == 1
        # Every stream ends with [DONE] at its length: none was cut by the scale-in.
        assert [await s for s in streams] == ["length"] * 4
        await wait_until(lambda: leaving.process.returncode is not None, timeout_s=60)
        assert live.names() == ["uni-0"]
        assert await complete(live.base_url) == 200


@pytest.mark.asyncio
async def test_a_scale_out_joins_the_router_without_a_restart(tmp_path: Path) -> None:
    settings = PoolSettings(worker_drain_timeout_s=2.0)
    async with deployment(tmp_path, settings) as live:
        live.pools.scale("uni", 5)  # beyond replicas.max 3: the pool's bound holds
        assert live.pools.counts("uni").provisioned == 3
        await wait_until(lambda: len(live.listed()) == 3, timeout_s=READY_TIMEOUT_S)
        assert live.names() == ["uni-0", "uni-1", "uni-2"]
        # The router sends to the newcomer: round-robin over three reaches every one.
        for _ in range(6):
            assert await complete(live.base_url) == 200
        live.pools.scale("uni", 0)  # below replicas.min 1: the pool keeps one
        assert live.pools.counts("uni").provisioned == 1


@pytest.mark.asyncio
async def test_a_prefill_worker_becomes_a_decode_worker_under_load_without_a_restart(
    tmp_path: Path,
) -> None:
    settings = PoolSettings(worker_drain_timeout_s=2.0)
    async with deployment(tmp_path, settings, PD) as live:
        switched = next(c for c in live.pools.children("prefill") if c.name == "prefill-1")
        address = str(switched.ready["grpc"])
        # Long P/D streams in flight: each was prefilled (maybe on prefill-1), its KV
        # pulled, and streams from the one decode worker while prefill-1 switches.
        streams = [
            asyncio.create_task(stream_to_the_end(live.base_url, max_tokens=300)) for _ in range(4)
        ]
        await asyncio.sleep(0.5)
        assert live.pools.switch("prefill", "decode", 1) == 1
        # Out of prefill's membership at once; on its way to decode, counted there.
        assert address not in live.listed()
        assert live.pools.counts("prefill").ready == 1
        assert live.pools.counts("decode").starting == 1
        # A second switch would take prefill below its replicas.min of 1.
        assert live.pools.switch("prefill", "decode", 1) == 0
        await wait_until(lambda: address in live.listed("decode"), timeout_s=60)
        assert switched.process.returncode is None  # the same process: no restart
        assert live.names("decode") == ["decode-0", "prefill-1"]
        assert live.pools.counts("decode").ready == 2
        assert [await s for s in streams] == ["length"] * 4
        # The router joined it as a decode worker: new requests succeed on both.
        for _ in range(100):
            if await _router_workers(live, "decode") == 2:
                break
            await asyncio.sleep(0.2)
        assert await _router_workers(live, "decode") == 2
        for _ in range(6):
            assert await complete(live.base_url) == 200


async def _router_workers(live: Deployment, role: str) -> float:
    """The router's own count of model m's workers in `role` (its `triskel_workers`)."""
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{live.base_url}/metrics") as response,
    ):
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("triskel_workers{") and f'role="{role}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0
