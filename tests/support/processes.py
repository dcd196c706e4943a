"""Start `triskel` commands as child processes and read their output with deadlines."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence


async def start_triskel(
    args: Sequence[str], *, pipe_stderr: bool = True
) -> asyncio.subprocess.Process:
    """`triskel <args>`, its stdout piped (for `read_until`), and its stderr too unless
    `pipe_stderr` is False: then it writes to the test's, as a command must whose own
    children share its stderr (a pipe they hold can outlive the test's event loop)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "triskel.cli.main",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE if pipe_stderr else None,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def read_until(
    process: asyncio.subprocess.Process, marker: str, timeout_s: float = 90.0
) -> list[str]:
    """stdout lines up to and including the first containing `marker`."""
    assert process.stdout is not None
    lines: list[str] = []

    async def read() -> list[str]:
        assert process.stdout is not None
        while True:
            raw = await process.stdout.readline()
            if not raw:
                stderr = await process.stderr.read() if process.stderr else b""
                raise AssertionError(
                    f"process ended before {marker!r}; stdout={lines} stderr={stderr.decode()}"
                )
            lines.append(raw.decode().rstrip())
            if marker in lines[-1]:
                return lines

    return await asyncio.wait_for(read(), timeout_s)
