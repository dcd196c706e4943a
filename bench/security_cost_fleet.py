"""The processes security_cost.py measures: `triskel worker` and `triskel router` children.

Each router runs in its own process, so its CPU time can be read apart from the
client's (this process) and the worker's: `cpu_ns` sums every thread's time on a CPU
from /proc/<pid>/task/*/schedstat (nanoseconds; /proc/<pid>/stat counts 10 ms ticks,
too coarse for one request). Children are started here and stopped by their PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

READY_PREFIX = "TRISKEL_READY "
_START_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Child:
    """A started child: its PID and what it announced (addresses by name)."""

    pid: int
    ready: dict[str, Any]


def cpu_ns(pid: int) -> int:
    """Nanoseconds every thread of `pid` has run so far (threads that ended are lost,
    which the router's long-lived threads never do during a run)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        path = f"/proc/{pid}/task/{task}/schedstat"
        with contextlib.suppress(FileNotFoundError), open(path) as stats:
            total += int(stats.read().split()[0])
    return total


@contextlib.asynccontextmanager
async def triskel_child(args: Sequence[str], log_path: Path) -> AsyncIterator[Child]:
    """`triskel ARGS` as a child, once it has announced itself; SIGTERM at the end."""
    with _log_file(log_path) as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "triskel.cli.main",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            # One hash seed for all: dict and set layouts, and so their speed, alike.
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": "0"},
        )
    try:
        ready = await asyncio.wait_for(_announcement(process, log_path), _START_TIMEOUT_S)
        yield Child(process.pid, ready)
    finally:
        await _stop(process)


async def _announcement(process: asyncio.subprocess.Process, log_path: Path) -> dict[str, Any]:
    assert process.stdout is not None
    while line := (await process.stdout.readline()).decode():
        if line.startswith(READY_PREFIX):
            ready: dict[str, Any] = json.loads(line[len(READY_PREFIX) :])
            return ready
    await process.wait()
    raise RuntimeError(f"a child stopped before it was ready: {_tail(log_path)}")


def _log_file(path: Path) -> BinaryIO:
    return open(path, "wb")  # the child writes it; a few bytes, no event loop to spare


def _tail(path: Path) -> str:
    return path.read_text()[-2000:]


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_S)
        except TimeoutError:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()


async def e2e_totals(session: aiohttp.ClientSession, metrics_address: str) -> tuple[float, int]:
    """The router's `triskel_e2e_seconds` sum and count, summed over models: its own
    time from a request's receipt (the handler's start, after TLS decryption) to its
    last token."""
    async with session.get(f"http://{metrics_address}/metrics") as reply:
        text = await reply.text()
    total_s, count = 0.0, 0
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("triskel_e2e_seconds_sum"):
            total_s += float(value)
        elif name.startswith("triskel_e2e_seconds_count"):
            count += int(float(value))
    return total_s, count
