"""`triskel up` keeps serving when a worker dies (it is replaced), and stops with a clear
message when its router dies."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import aiohttp
import pytest

from support.processes import read_until, start_triskel

UP_YAML = """
router: {http: "127.0.0.1:0", grpc: "127.0.0.1:0"}
pools:
  - name: uni
    role: unified
    model: tiny
    replicas: {min: 2, max: 2}
    profile: {name: llama-3.1-8b-h100, kvCapacityTokens: 16384, timeScale: 0.05}
"""


def children_of(pid: int) -> dict[int, str]:
    """The processes `pid` started (this test's own descendants), with their command lines."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            found[int(child)] = cmdline.decode()
    return found


def child_running(pid: int, component: str) -> int:
    """The PID of the one child of `pid` running `triskel <component>`."""
    (found,) = [c for c, line in children_of(pid).items() if f"main {component} " in line]
    return found


async def complete(base_url: str) -> int:
    body = {"model": "tiny", "prompt": "hello", "max_tokens": 4}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
        session.post(f"{base_url}/completions", json=body) as response,
    ):
        await response.read()
        return response.status


@pytest.mark.asyncio
async def test_a_killed_worker_is_replaced_and_up_keeps_serving(tmp_path: Path) -> None:
    config = tmp_path / "up.yaml"
    config.write_text(UP_YAML)
    process = await start_triskel(["up", "-f", str(config)])
    try:
        lines = await read_until(process, "Triskel is ready")
        match = re.search(r"http://(127\.0\.0\.1:\d+/v1)", lines[-1])
        assert match, lines[-1]
        workers = [c for c, line in children_of(process.pid).items() if "main worker " in line]
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        restart = await read_until(process, "restart uni:", timeout_s=60)
        assert re.search(r"exited with code -9; starting uni-2 in 0\.5 s", restart[-1]), restart
        await read_until(process, "uni-2        ready: grpc", timeout_s=90)
        for _ in range(4):
            assert await complete(f"http://{match.group(1)}") == 200
        assert process.returncode is None
    finally:
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 60)
    assert code == 0


@pytest.mark.asyncio
async def test_a_dead_router_stops_up_with_a_message(tmp_path: Path) -> None:
    config = tmp_path / "up.yaml"
    config.write_text(UP_YAML)
    process = await start_triskel(["up", "-f", str(config)])
    try:
        started = await read_until(process, "Triskel is ready")
        worker_line = r"^  uni-\d .* grpc 127\.0\.0\.1:(\d+)  frames :\d+$"
        ports = re.findall(worker_line, "\n".join(started), re.M)
        assert len(ports) == 2, started
        os.kill(child_running(process.pid, "router"), signal.SIGKILL)
        lines = await read_until(process, "Stopped.", timeout_s=60)
        assert "error: the router exited with code -9; stopping" in lines
        code = await asyncio.wait_for(process.wait(), 60)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), 60)
    assert code == 1
    for port in ports:  # the workers were stopped too, not orphaned
        with pytest.raises(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", int(port))
            writer.close()
