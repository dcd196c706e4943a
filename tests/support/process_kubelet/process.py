"""Container processes: start one, signal it, reap it; run an exec probe or hook.

Each container process leads its own session (so its own process group), like PID 1
of a container: SIGTERM goes to that process only, as a runtime sends it to PID 1;
once it has exited, or at SIGKILL time, the whole group is killed, as tearing down
a container's PID namespace kills what it left behind. Output goes to the
container's log file, appended across restarts.

Every PID started is recorded in the kubelet's `ProcessTable`, so `stop()` can kill
what is still running by PID even when the event loop that started it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class ProcessTable:
    """PIDs (each its own process group) of this kubelet's live processes; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pids: set[int] = set()

    def add(self, pid: int) -> None:
        with self._lock:
            self._pids.add(pid)

    def discard(self, pid: int) -> None:
        with self._lock:
            self._pids.discard(pid)

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(self._pids)

    def kill_all(self, grace_s: float) -> None:
        """SIGTERM to every live group, SIGKILL to those alive after `grace_s`."""
        pids = self.pids()
        for pid in pids:
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while any(_group_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)  # other processes' exits; nothing to wait on but the clock
        for pid in pids:
            _signal_group(pid, signal.SIGKILL)
            self.discard(pid)


@dataclass(frozen=True, slots=True)
class Launch:
    """What to run for one container, already in host terms."""

    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    log_path: Path


def exit_code(returncode: int) -> int:
    """A container's exit code: 128 + N when signal N ended it (137 for SIGKILL)."""
    return 128 - returncode if returncode < 0 else returncode


class ContainerProcess:
    """One running container process; `start` it, then `wait` or `stop` it."""

    def __init__(self, process: asyncio.subprocess.Process, table: ProcessTable) -> None:
        self._process = process
        self._table = table
        self.pid = process.pid

    @classmethod
    async def start(cls, launch: Launch, table: ProcessTable) -> ContainerProcess:
        """OSError when the program cannot be started (not found, not executable)."""
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        with launch.log_path.open("ab") as log:
            log.write(f"# process-kubelet: starting {list(launch.argv)}\n".encode())
            log.flush()
            process = await asyncio.create_subprocess_exec(
                *launch.argv,
                env=dict(launch.env),
                cwd=launch.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        table.add(process.pid)
        return cls(process, table)

    async def wait(self) -> int:
        """The container's exit code once its main process ended (the group is killed)."""
        returncode = await self._process.wait()
        # Not on cancellation: then the kubelet is stopping, and kills by PID itself.
        _signal_group(self.pid, signal.SIGKILL)
        self._table.discard(self.pid)
        return exit_code(returncode)

    @property
    def running(self) -> bool:
        return self._process.returncode is None

    async def stop(self, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after `grace_s`; returns once the process is reaped."""
        if not self.running:
            return
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._process.wait()), grace_s)
        except TimeoutError:
            _signal_group(self.pid, signal.SIGKILL)
            await self._process.wait()


async def run_exec(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout_s: float
) -> tuple[int | None, str]:
    """Runs an exec probe or hook: (exit code, output), exit code None on timeout."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        return 126, str(error)  # what a shell answers for a command it cannot run
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        return None, f"timed out after {timeout_s} s"
    finally:
        # Whatever the command started and left behind (or the command itself, on a
        # timeout or a cancellation) goes with it.
        _signal_group(process.pid, signal.SIGKILL)
    return exit_code(process.returncode or 0), output.decode(errors="replace")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
