"""Starts and stops the local processes of `triskel up`, one at a time.

Each child runs `python -m triskel.cli.main <component> --config-json ...` in its
own session (so a terminal's Ctrl-C reaches only `up`, which then stops the
children in order: router first, then workers) and announces itself with one
line `TRISKEL_READY <json>` on stdout. Children are started and stopped
individually: a pool grows, shrinks or replaces a dead worker while the others serve.
How long to wait before replacing a child that keeps dying is `RestartBackoff`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
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
    _stdout_reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


class Supervisor:
    """Owns the child processes it started and only those (by PID)."""

    def __init__(self, log_level: str = "warning") -> None:
        self._children: list[Child] = []
        self._log_level = log_level

    @property
    def children(self) -> list[Child]:
        return list(self._children)

    async def start(
        self,
        name: str,
        component: str,
        config: dict[str, Any],
        ready_timeout_s: float = 120.0,
        flags: Sequence[str] = (),
    ) -> Child:
        """Starts a child (`flags`: more of its command line) and waits for its ready line;
        ChildFailedError if it never comes (the child is then stopped and forgotten)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "triskel.cli.main",
            component,
            *flags,
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
            await self.stop(child)
            raise ChildFailedError(f"{name} was not ready after {ready_timeout_s:.0f} s") from None
        except BaseException:  # failed, or cancelled while starting: leave no orphan
            await self.stop(child)
            raise
        # Nobody reads a ready child's stdout; draining it keeps a chatty one from blocking.
        child._stdout_reader = asyncio.create_task(_discard(process))
        return child

    async def stop(self, child: Child, timeout_s: float = _STOP_TIMEOUT_S) -> None:
        """SIGTERM the child, SIGKILL it if still running after `timeout_s`, and forget
        it. Also what to call for a child that already exited (it is only forgotten)."""
        with contextlib.suppress(ValueError):
            self._children.remove(child)
        await _stop(child, timeout_s)

    async def stop_all(self) -> None:
        """Stops every child, newest first (the router before the workers it was given)."""
        for child in reversed(self._children):
            await _stop(child, _STOP_TIMEOUT_S)
        self._children.clear()


@dataclass(frozen=True, slots=True)
class RestartBackoff:
    """How long to wait before replacing a child that died: `initial_s`, doubling with
    each consecutive failure up to `max_s`. A child that served `healthy_after_s` before
    dying starts the count again, so one crash a day never waits the maximum.

    A dead worker is replaced quickly, and one that dies at every start (a port taken,
    a broken profile) does not spin the machine. The router's `OutageBackoff` is
    a different shape (skip calls to a dependency until a retry time), hence this one.
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    healthy_after_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(f"backoff: need 0 < initial_s ({self.initial_s}) <= max_s")

    def failures_after(self, failures: int, served_s: float) -> int:
        """Consecutive failures counting one more death after `served_s` of serving."""
        return 1 if served_s >= self.healthy_after_s else failures + 1

    def delay_s(self, failures: int) -> float:
        """The wait before the next start after `failures` consecutive failures (>= 1)."""
        # The exponent is capped so a long crash loop never overflows a float.
        return min(self.initial_s * 2.0 ** min(max(failures, 1) - 1, 60), self.max_s)


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


async def _discard(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    while await process.stdout.readline():
        pass


async def _stop(child: Child, timeout_s: float) -> None:
    process = child.process
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if child._stdout_reader is not None:
        child._stdout_reader.cancel()


def announce_ready(payload: dict[str, Any]) -> None:
    """What a child prints once it serves (the supervisor parses it)."""
    print(READY_PREFIX + json.dumps(payload), flush=True)
