"""What the CPU-per-request benches share: a process's CPU time, and one measured window
of closed-loop callers (`grpc_call_cost.py`, `http_front_cost.py`; `router_processes.py`
reads CPU time alone).

The callers run from the start; after `warmup_s` the window opens (the load's
`is_measuring`), CPU time of this process and of the server is read on both sides of
it, then the callers are told to stop (`is_stopping`) and drained.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_DRAIN_TIMEOUT_S = 30.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread `pid` has run so far."""
    # The name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS_PER_S


class Phased(Protocol):
    """The flags the callers read: count only while measuring, end when stopping."""

    is_measuring: bool
    is_stopping: bool


@dataclass(frozen=True, slots=True)
class Window:
    elapsed_s: float
    client_cpu_s: float  # this process, its threads included
    server_cpu_s: float


async def measure_window(
    callers: list[Coroutine[Any, Any, None]],
    load: Phased,
    server_pid: int,
    warmup_s: float,
    seconds: float,
) -> Window:
    """Runs `callers` as tasks, measures one window of `seconds` after `warmup_s`, then
    stops and drains them (a caller's exception is raised here)."""
    tasks = [asyncio.create_task(caller) for caller in callers]
    try:
        await asyncio.sleep(warmup_s)
        server_cpu_s, client_cpu_s = cpu_seconds(server_pid), time.process_time()
        started_s = time.perf_counter()
        load.is_measuring = True
        await asyncio.sleep(seconds)
        load.is_measuring = False
        window = Window(
            elapsed_s=time.perf_counter() - started_s,
            client_cpu_s=time.process_time() - client_cpu_s,
            server_cpu_s=cpu_seconds(server_pid) - server_cpu_s,
        )
        load.is_stopping = True
        await asyncio.wait_for(asyncio.gather(*tasks), _DRAIN_TIMEOUT_S)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return window
