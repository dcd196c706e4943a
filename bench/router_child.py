"""`triskel router --processes N` as a child of a bench script, for as long as it runs.

The benches' one copy: they do not import from tests/ (tests start their routers
with support.processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from triskel.cli.supervisor import READY_PREFIX

# The parent is ready once every one of its processes is.
_READY_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class RouterChild:
    process: asyncio.subprocess.Process
    ready: dict[str, Any]
    """Its ready line: the addresses it serves ("http", "grpc", and "metrics" when that
    is a port of its own)."""


@contextlib.asynccontextmanager
async def started_router(config: dict[str, Any], processes: int = 1) -> AsyncIterator[RouterChild]:
    """The router on `config` (RouterProcessConfig's JSON), ready; stopped (SIGTERM,
    then waited for) on leaving. Its first stdout line must be the ready line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "triskel.cli.main",
        "router",
        "--processes",
        str(processes),
        "--config-json",
        json.dumps(config),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), _READY_TIMEOUT_S)).decode()
        assert line.startswith(READY_PREFIX), line
        yield RouterChild(process, json.loads(line.removeprefix(READY_PREFIX)))
    finally:
        process.terminate()
        await process.wait()
