"""Starts and stops the local processes of `triskel up`.

Each child runs `python -m triskel.cli.main <component> --config-json ...` in its
own session (so a terminal's Ctrl-C reaches only `up`, which then stops the
children in order: router first, then workers) and announces itself with one
line `TRISKEL_READY <json>` on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

READY_PREFIX = "TRISKEL_READY "
_STOP_TIMEOUT_S = 10.0


class ChildFailedError(RuntimeError):
    """A child exited or stayed silent before announcing itself ready."""


@dataclass(slots=True)
class Child:
    name: str
    process: asyncio.subprocess.Process
    ready: dict[str, Any] = field(default_factory=dict)
    _drain: asyncio.Task[None] | None = None


class Supervisor:
    """Owns the child processes it started and only those (by PID)."""

    def __init__(self, log_level: str = "warning") -> None:
        self._children: list[Child] = []
        self._log_level = log_level

    @property
    def children(self) -> list[Child]:
        return list(self._children)

    async def start(
        self, name: str, component: str, config: dict[str, Any], ready_timeout_s: float = 120.0
    ) -> Child:
        """Starts a child and waits for its ready line; ChildFailedError if it never comes."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "triskel.cli.main",
            component,
            "--config-json",
            json.dumps(config),
            "--log-level",
            self._log_level,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        child = Child(name, process)
        self._children.append(child)
        try:
            child.ready = await asyncio.wait_for(_read_ready(child), ready_timeout_s)
        except TimeoutError:
            raise ChildFailedError(f"{name} was not ready after {ready_timeout_s:.0f} s") from None
        child._drain = asyncio.create_task(_drain(process))
        return child

    async def wait_any_exit(self) -> Child:
        """Returns the first child that exits on its own."""
        waits = {asyncio.create_task(c.process.wait()): c for c in self._children}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        return waits[done.pop()]

    async def stop_all(self) -> None:
        """SIGTERM each child, newest first (the router before its workers); SIGKILL stragglers."""
        for child in reversed(self._children):
            await _stop(child)
        self._children.clear()


async def _read_ready(child: Child) -> dict[str, Any]:
    assert child.process.stdout is not None
    while True:
        line = await child.process.stdout.readline()
        if not line:
            code = await child.process.wait()
            raise ChildFailedError(f"{child.name} exited with code {code} before it was ready")
        text = line.decode(errors="replace").strip()
        if text.startswith(READY_PREFIX):
            ready: dict[str, Any] = json.loads(text[len(READY_PREFIX) :])
            return ready


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    while await process.stdout.readline():
        pass


async def _stop(child: Child) -> None:
    process = child.process
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if child._drain is not None:
        child._drain.cancel()


def announce_ready(payload: dict[str, Any]) -> None:
    """What a child prints once it serves (the supervisor parses it)."""
    print(READY_PREFIX + json.dumps(payload), flush=True)
