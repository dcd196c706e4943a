"""`triskel router --processes N`: N router processes serving one port (SO_REUSEPORT).

The parent makes a private directory for the siblings' sockets
(triskel.router.siblings) and starts N children `triskel router`, each with its place
among them: the first on the configured ports (port 0: free ones, SO_REUSEPORT), the
others on the ports it bound; it announces itself ready when all are. A child that
dies is started again (RestartBackoff) while the others serve; SIGTERM / SIGINT stop
them all. The parent serves nothing itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from triskel.cli.supervisor import Child, ChildFailedError, RestartBackoff, Supervisor
from triskel.common.api import split_address

_log = logging.getLogger(__name__)
_READY_TIMEOUT_S = 120.0
# Below Kubernetes' default 30 s grace period, so every process is ended by us, not killed.
_STOP_TIMEOUT_S = 25.0


def available_cores(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may use: its CPU affinity, bounded by a cgroup v2 CPU
    quota (a pod's CPU limit) when one is set."""
    cores = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        quota, period = (cgroup_root / "cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    return cores


def sibling_config(data: dict[str, Any], index: int, count: int, directory: Path) -> dict[str, Any]:
    """A child's config: the router's (`--config-json` with the flags laid over it) with
    its place among its siblings."""
    return {**data, "siblings": {"index": index, "count": count, "directory": str(directory)}}


def on_bound_ports(data: dict[str, Any], ready: dict[str, Any]) -> dict[str, Any]:
    """`data` on the ports the first child bound (its ready line), for the others: the
    same as configured unless that was port 0."""
    return {
        **data,
        "httpAddress": _on_port_of(data.get("httpAddress", _HTTP), ready["http"]),
        "grpcAddress": _on_port_of(data.get("grpcAddress", _GRPC), ready["grpc"]),
    }


class RouterProcesses:
    """Owns the children it started (by PID) and the sockets and directory it made."""

    def __init__(self, data: dict[str, Any], count: int, log_level: str) -> None:
        self._data = data
        self._count = count
        self._supervisor = Supervisor(log_level)
        self._backoff = RestartBackoff()
        self._directory: Path | None = None

    async def run(self, on_ready: Callable[[dict[str, Any]], None]) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            self._directory = Path(tempfile.mkdtemp(prefix="triskel-router-"))  # mode 0700
            first = await self._start(
                0, sibling_config(self._data, 0, self._count, self._directory)
            )
            bound = on_bound_ports(self._data, first.ready)
            configs = [
                sibling_config(bound, i, self._count, self._directory) for i in range(self._count)
            ]
            others = await asyncio.gather(
                *(self._start(i, configs[i]) for i in range(1, self._count))
            )
            on_ready(first.ready)
            await self._serve([first, *others], configs, stop)
        finally:
            # All at once: each drains its own requests within the pod's one grace period.
            children = self._supervisor.children
            await asyncio.gather(*(self._supervisor.stop(c, _STOP_TIMEOUT_S) for c in children))
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)

    async def _start(self, index: int, config: dict[str, Any]) -> Child:
        return await self._supervisor.start(
            f"router process {index}", "router", config, _READY_TIMEOUT_S
        )

    async def _serve(
        self, children: list[Child], configs: list[dict[str, Any]], stop: asyncio.Event
    ) -> None:
        """Until `stop`: a child that exits is started again after its back-off (a stop
        meanwhile cancels the restart, which stops a child caught starting)."""
        loop = asyncio.get_running_loop()
        failures = [0] * len(children)
        started_s = [loop.time()] * len(children)
        stopping = asyncio.ensure_future(stop.wait())
        # Each pending task is a child's exit (its code) or its restart (the new child, or
        # an exit code when it failed to start), by index.
        pending: dict[asyncio.Future[Child | int], int] = {
            asyncio.ensure_future(c.process.wait()): i for i, c in enumerate(children)
        }
        try:
            while True:
                waiting: list[asyncio.Future[Any]] = [stopping, *pending]
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if stopping.done():
                    return
                for task in [t for t in pending if t.done()]:
                    index = pending.pop(task)
                    result = task.result()
                    if isinstance(result, Child):  # restarted: follow its exit
                        children[index] = result
                        started_s[index] = loop.time()
                        pending[asyncio.ensure_future(result.process.wait())] = index
                        continue
                    failures[index] = self._backoff.failures_after(
                        failures[index], loop.time() - started_s[index]
                    )
                    started_s[index] = loop.time()  # until a start succeeds: it serves nothing
                    delay_s = self._backoff.delay_s(failures[index])
                    _log.warning(
                        "router process %d exited with code %s; starting it again in %.1f s",
                        index,
                        result,
                        delay_s,
                    )
                    await self._supervisor.stop(children[index])  # forget it
                    restart = self._restart(index, configs[index], delay_s)
                    pending[asyncio.ensure_future(restart)] = index
        finally:
            stopping.cancel()
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _restart(self, index: int, config: dict[str, Any], delay_s: float) -> Child | int:
        """The child started again after `delay_s`, or (when it fails to start) an exit
        code, which counts as one more failure."""
        await asyncio.sleep(delay_s)
        try:
            return await self._start(index, config)
        except ChildFailedError as error:
            _log.warning("router process %d: %s", index, error)
            return 1


def _on_port_of(configured: str, bound: str) -> str:
    """`configured`'s host (as written) on `bound`'s port."""
    return f"{split_address(configured)[0]}:{split_address(bound)[1]}"


_HTTP, _GRPC = "127.0.0.1:8080", "127.0.0.1:50051"  # RouterProcessConfig's defaults
