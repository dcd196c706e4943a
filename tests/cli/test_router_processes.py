"""`triskel router --processes 2`: two real processes serve one port and act as one
router. A long shared prefix sticks to one worker whichever process takes the request
(the siblings learn each other's picks: the profile here scores from routing history
alone, so a process that did not learn would pick by load), both processes serve, and
the first one's /metrics counts the second's work too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from triskel.cli.main import app
from triskel.cli.router_processes import available_cores, on_bound_ports, sibling_config
from triskel.cli.supervisor import READY_PREFIX
from triskel.router.siblings.metrics import SEND_INTERVAL_S

from support.local_workers import LocalWorker, local_worker, mock_pool, scrape
from support.processes import read_until, start_triskel

# History alone decides (llm-d's approximate scorer), load only breaks ties.
HISTORY_ROUTING = {
    "plugins": [
        {"type": "prefix-cache-scorer", "name": "prefix"},
        {"type": "queue-scorer", "name": "queue"},
        {"type": "max-score-picker"},
    ],
    "profiles": [
        {
            "name": "default",
            "plugins": [
                {"pluginRef": "prefix", "weight": 3},
                {"pluginRef": "queue", "weight": 1},
                {"pluginRef": "max-score-picker"},
            ],
        }
    ],
    "defaultProfile": "default",
}
NUM_REQUESTS = 21
LONG_PREFIX = " ".join(f"shared-context-{i}" for i in range(300))


@contextlib.asynccontextmanager
async def router_processes(config: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """`triskel router --processes 2` as a user runs it; its ready line's addresses."""
    args = ["router", "--processes", "2", "--config-json", json.dumps(config)]
    process = await start_triskel(args, pipe_stderr=False)  # its processes share it
    try:
        lines = await read_until(process, READY_PREFIX, timeout_s=60)
        ready = json.loads(lines[-1].split(READY_PREFIX, 1)[1])
        yield {**ready, "parent": process.pid}
    finally:
        if process.returncode is None:
            process.terminate()
        # 0 when stopped here; -9 when the test killed it outright.
        assert await asyncio.wait_for(process.wait(), 30) in (0, -signal.SIGKILL)


async def chat(http: str, suffix: str) -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": f"{LONG_PREFIX} {suffix}"}],
        "max_tokens": 2,
    }
    # A connection per request: the kernel spreads connections, not requests.
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://{http}/v1/chat/completions", json=body) as reply,
    ):
        assert reply.status == 200, await reply.text()


async def prompt_tokens(worker: LocalWorker) -> float:
    samples = await scrape(f"{worker.http_url}/metrics")
    return sum(
        value for (name, _), value in samples.items() if name == "vllm:prefix_cache_queries_total"
    )


async def decisions_seen(http: str, scrapes: int) -> set[float]:
    """Each scrape's total decisions (fresh connections: each reaches either process)."""
    seen = set()
    for _ in range(scrapes):
        samples = await scrape(f"http://{http}/metrics")
        seen.add(
            sum(v for (name, _), v in samples.items() if name == "triskel_router_decisions_total")
        )
    return seen


@pytest.mark.asyncio
async def test_two_processes_one_port_one_worker_for_a_long_prefix() -> None:
    pool = mock_pool("unified", kv_capacity_tokens=65536)
    async with contextlib.AsyncExitStack() as stack:
        workers = [
            await stack.enter_async_context(local_worker(pool, f"w{i}", http_address="127.0.0.1:0"))
            for i in range(4)
        ]
        config = {
            "httpAddress": "127.0.0.1:0",
            "grpcAddress": "127.0.0.1:0",
            "workers": [w.endpoints.grpc for w in workers],
            "routing": HISTORY_ROUTING,
        }
        async with router_processes(config) as ready:
            for n in range(NUM_REQUESTS):
                await chat(ready["http"], f"question {n}")
            tokens = [await prompt_tokens(w) for w in workers]
            await asyncio.sleep(SEND_INTERVAL_S * 1.5)  # the second's counters reach the first
            seen = await decisions_seen(ready["http"], 40)
    # One worker got every prompt.
    assert sum(1 for t in tokens if t > 0) == 1, tokens
    # The first process's /metrics counts every decision (its own and the second's); the
    # second's counts its own: some, not all, so both served.
    (own,) = seen - {NUM_REQUESTS}
    assert NUM_REQUESTS in seen and 0 < own < NUM_REQUESTS, seen


def test_the_others_share_the_ports_the_first_bound(tmp_path: Path) -> None:
    data = {"httpAddress": "0.0.0.0:0", "grpcAddress": "[::]:0", "redisUrl": "redis://r:6379"}
    bound = on_bound_ports(data, {"http": "0.0.0.0:8080", "grpc": "[::]:50051"})
    assert bound == {**data, "httpAddress": "0.0.0.0:8080", "grpcAddress": "[::]:50051"}
    second = sibling_config(bound, 1, 3, tmp_path)
    assert second["siblings"] == {"index": 1, "count": 3, "directory": str(tmp_path)}
    assert second["redisUrl"] == "redis://r:6379"


def test_available_cores_follows_the_cgroup_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert available_cores(tmp_path) == min(2, available_cores(tmp_path / "none"))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cores(tmp_path) == available_cores(tmp_path / "none")


CONFIG = json.dumps({"workers": ["127.0.0.1:1"], "httpAddress": "127.0.0.1:0"})


def test_auth_without_redis_is_refused_before_any_process_starts(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys: []\n")
    result = CliRunner().invoke(
        app,
        ["router", "--processes", "2", "--api-keys-file", str(keys), "--config-json", CONFIG],
    )
    assert result.exit_code != 0
    assert "auth: with several router processes it needs redis_url" in result.output


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


@pytest.mark.asyncio
async def test_a_process_that_dies_is_started_again_while_the_other_serves() -> None:
    pool = mock_pool("unified")
    async with contextlib.AsyncExitStack() as stack:
        worker = await stack.enter_async_context(local_worker(pool, "w0"))
        config = {
            "httpAddress": "127.0.0.1:0",
            "grpcAddress": "127.0.0.1:0",
            "workers": [worker.endpoints.grpc],
        }
        async with router_processes(config) as ready:
            parent = ready["parent"]
            before = children_of(parent)
            assert len(before) == 2
            victim = min(before)
            os.kill(victim, signal.SIGKILL)  # a child of the router this test started
            # The other keeps serving. A connection the kernel had queued on the dying
            # process is reset with it (Linux, without net.ipv4.tcp_migrate_req): a
            # client retries it once; a second failure fails the test.
            for n in range(10):
                try:
                    await chat(ready["http"], f"during {n}")
                except aiohttp.ClientOSError:
                    await chat(ready["http"], f"during {n}, again")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while len(children_of(parent) - {victim}) < 2:
                assert loop.time() < deadline, "the dead process was not started again"
                await asyncio.sleep(0.1)
            for n in range(10):
                await chat(ready["http"], f"after {n}")


@pytest.mark.asyncio
async def test_the_processes_end_with_their_parent_even_one_killed_outright() -> None:
    async with local_worker(mock_pool("unified"), "w0") as worker:
        config = {
            "httpAddress": "127.0.0.1:0",
            "grpcAddress": "127.0.0.1:0",
            "workers": [worker.endpoints.grpc],
        }
        async with router_processes(config) as ready:
            children = children_of(ready["parent"])
            assert len(children) == 2
            os.kill(ready["parent"], signal.SIGKILL)  # the router this test started
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while any(_running(pid) for pid in children):
                assert loop.time() < deadline, "a router process outlived its parent"
                await asyncio.sleep(0.1)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
