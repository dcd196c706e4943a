"""Serves a worker's vLLM-compatible API, and its SGLang-style bootstrap listener, on
their addresses (port 0 picks a free one), and stops them.

Stopping order (the worker process drains its engine in between):

    mark_stopping()   /health answers 503, so routers stop sending
    ... drain ...     requests in flight finish on the still-open listeners
    close()           bootstrap waiters fail at once (502 on their decode workers),
                      then both listeners close
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from triskel.common.http_listener import HttpLimits, start_http_listener
from triskel.workers.api import Engine
from triskel.workers.elastic_ep import ElasticEpGroup
from triskel.workers.kv.control import format_address, parse_address
from triskel.workers.openai_http.app import HttpApiSettings, build_worker_app
from triskel.workers.openai_http.bootstrap import build_bootstrap_app
from triskel.workers.openai_http.info import ServingState
from triskel.workers.openai_http.rooms import BootstrapRooms

# Longest wait for a handler still running when a listener closes (after the drain,
# only long polls and streams of clients that ignore the 503 are left).
_SHUTDOWN_TIMEOUT_S = 2.0


async def serve_app(
    app: web.Application, address: str, limits: HttpLimits
) -> tuple[web.AppRunner, str]:
    """Serves `app` on `address` under `limits`; returns its runner and the bound
    "host:port"."""
    host, port = parse_address(address)
    # Malformed requests (smg probes workers with HTTP/2 prior knowledge at start) are
    # refused with a 400 and at most one DEBUG line (the listener's logger).
    runner, bound_port = await start_http_listener(app, host, port, limits, _SHUTDOWN_TIMEOUT_S)
    return runner, format_address(host, bound_port)


@dataclass(frozen=True, slots=True)
class _BootstrapListener:
    runner: web.AppRunner
    address: str
    rooms: BootstrapRooms

    async def close(self) -> None:
        self.rooms.close("the prefill worker is stopping")
        await self.runner.cleanup()


class WorkerHttpApi:
    """A worker's running HTTP API (and bootstrap listener); see `start_worker_http_api`."""

    def __init__(
        self,
        runner: web.AppRunner,
        http_address: str,
        state: ServingState,
        bootstrap: _BootstrapListener | None,
    ) -> None:
        self._runner = runner
        self._state = state
        self._bootstrap = bootstrap
        self.http_address = http_address
        self.bootstrap_address = bootstrap.address if bootstrap is not None else None

    def mark_stopping(self) -> None:
        """From now on /health answers 503; requests are still served."""
        self._state.is_stopping = True

    async def close(self) -> None:
        self.mark_stopping()
        if self._bootstrap is not None:
            # First: a decode worker waiting for a room hears at once that none will come.
            self._bootstrap.rooms.close("the prefill worker is stopping")
        await self._runner.cleanup()
        if self._bootstrap is not None:
            await self._bootstrap.close()


async def start_worker_http_api(
    engine: Engine,
    http_address: str,
    bootstrap_address: str | None = None,
    settings: HttpApiSettings | None = None,
    elastic_ep: ElasticEpGroup | None = None,
) -> WorkerHttpApi:
    """Serves the API over a started `engine` (and the EP group it simulates, if any),
    and the bootstrap listener if given."""
    settings = settings or HttpApiSettings()
    state = ServingState()
    bootstrap: _BootstrapListener | None = None
    rooms: BootstrapRooms | None = None
    bootstrap_port: int | None = None
    if bootstrap_address is not None:
        rooms = BootstrapRooms(ttl_s=settings.kv_hold_ms / 1000)
        bootstrap_app = build_bootstrap_app(rooms)
        runner, bound = await serve_app(bootstrap_app, bootstrap_address, settings.limits)
        bootstrap = _BootstrapListener(runner, bound, rooms)
        bootstrap_port = parse_address(bound)[1]
    try:
        app = build_worker_app(engine, settings, state, rooms, bootstrap_port, elastic_ep)
        runner, bound = await serve_app(app, http_address, settings.limits)
    except BaseException:
        if bootstrap is not None:
            await bootstrap.close()
        raise
    return WorkerHttpApi(runner, bound, state, bootstrap)
