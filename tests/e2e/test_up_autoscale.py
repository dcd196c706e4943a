"""`triskel up` with `autoscale:` as a user runs it: the planner shrinks a busy pool of
four workers to two, and not one request through the router fails on the way."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path

import aiohttp
import pytest

from support.processes import read_until, start_triskel

# Windows of 0 s: the planner's first look may shrink the pool. SLOs far above what a
# loaded CI machine makes, so its fast path never asks for more instead. Steady light
# load needs one prefill and one decode replica's worth: 2 unified, the pool's minimum.
UP_YAML = """
router: {http: "127.0.0.1:0", grpc: "127.0.0.1:0"}
autoscale:
  intervalS: 2
  ttftMs: 60000
  tpotMs: 10000
  scaleDownWindowS: 0
  scaleDownCooldownS: 0
pools:
  - name: uni
    role: unified
    model: tiny
    replicas: {min: 2, max: 4, desired: 4}
    profile: {name: llama-3.1-8b-h100, kvCapacityTokens: 65536}
"""
NUM_CLIENTS = 3
# Load goes on this long after the last removed worker stopped (ready ones keep serving).
LOAD_AFTER_S = 6.0
TIMEOUT_S = 120.0


async def stream_one(session: aiohttp.ClientSession, base_url: str) -> None:
    """One streamed chat completion to [DONE]; AssertionError on any failure."""
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Tell me about autoscaling."}],
        "max_tokens": 60,
        "ignore_eos": True,
        "stream": True,
    }
    async with session.post(f"{base_url}/chat/completions", json=body) as response:
        assert response.status == 200, await response.text()
        async for raw in response.content:
            line = raw.decode().strip()
            if line == "data: [DONE]":
                return
            if line.startswith("data: "):
                assert "error" not in json.loads(line.removeprefix("data: ")), line
    raise AssertionError("the stream ended without [DONE]")


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_busy_pool_shrinks_from_four_to_two_without_a_failed_request(
    tmp_path: Path,
) -> None:
    config = tmp_path / "up.yaml"
    config.write_text(UP_YAML)
    process = await start_triskel(["up", "-f", str(config)])
    lines: list[str] = []
    reader: asyncio.Task[None] | None = None
    try:
        lines += await read_until(process, "Triskel is ready")
        match = re.search(r"http://(127\.0\.0\.1:\d+)/v1", lines[-1])
        assert match, lines[-1]
        base_url = f"http://{match.group(1)}/v1"
        worker_line = r"^  (uni-\d) .* grpc 127\.0\.0\.1:(\d+)  frames :\d+$"
        ports = dict(re.findall(worker_line, "\n".join(lines), re.M))
        assert sorted(ports) == ["uni-0", "uni-1", "uni-2", "uni-3"]

        async def read_log() -> None:
            assert process.stdout is not None
            while raw := await process.stdout.readline():
                lines.append(raw.decode().rstrip())

        reader = asyncio.create_task(read_log())
        succeeded, failures = 0, []
        stopping = asyncio.Event()

        async def client() -> None:
            nonlocal succeeded
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while not stopping.is_set():
                    try:
                        await stream_one(session, base_url)
                        succeeded += 1
                    except (AssertionError, aiohttp.ClientError, TimeoutError) as error:
                        failures.append(repr(error))

        clients = [asyncio.create_task(client()) for _ in range(NUM_CLIENTS)]
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + TIMEOUT_S
            while not all(_said(lines, f"uni-{i} drained and stopped") for i in (2, 3)):
                assert loop.time() < deadline, "\n".join(lines)
                assert process.returncode is None, "\n".join(lines)
                await asyncio.sleep(0.2)
            await asyncio.sleep(LOAD_AFTER_S)  # the two left keep serving the same load
        finally:
            stopping.set()
            await asyncio.gather(*clients)
        log = "\n".join(lines)
        assert failures == [], log
        assert succeeded >= NUM_CLIENTS, log
        # The planner's decision, with its reason, on one line; the newest two drained.
        assert re.search(r"^autoscale uni: 4 -> 2 \(scale down: .*\) ", log, re.M), log
        assert _said(lines, "scale uni: draining uni-3") and _said(lines, "draining uni-2"), log
        for name in ("uni-2", "uni-3"):  # their processes have exited: ports closed
            with pytest.raises(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", int(ports[name]))
                writer.close()
        for name in ("uni-0", "uni-1"):  # the others still serve
            _, writer = await asyncio.open_connection("127.0.0.1", int(ports[name]))
            writer.close()
    finally:
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 60)
        if reader is not None:
            await asyncio.wait_for(reader, 10)
    assert code == 0, "\n".join(lines)


def _said(lines: list[str], text: str) -> bool:
    return any(text in line for line in lines)
