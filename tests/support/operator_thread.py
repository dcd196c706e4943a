"""The kopf operator in its own thread against kmock's emulated API server.

kopf runs in its own thread and event loop: on stop it cancels every task created after
it started, which in pytest's loop would include pytest's own. Objects are created once
the operator's watches are open, so kopf sees each of them once, as an ADDED event.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import kmock
import kopf

from triskel.operator.app import operator_settings, run_operator
from triskel.operator.runtime import OperatorOptions, OperatorRuntime

from support.kube_emulator import NAMESPACE, watches_open

# Cluster-wide: kmock cannot answer kopf's namespace listing of a namespaced run.
# A status timer every 0.5 s, so tests see status follow what runs within seconds.
EMULATOR_OPTIONS = OperatorOptions(
    worker_image="triskel:test", router_namespace=NAMESPACE, status_interval_s=0.5
)
WATCHED = ["workerpools", "servinggraphs", "routingpolicies"]
STOP_TIMEOUT_S = 15.0


@contextlib.asynccontextmanager
async def running_operator(
    server: kmock.KubernetesEmulator, options: OperatorOptions = EMULATOR_OPTIONS
) -> AsyncIterator[OperatorRuntime]:
    """Runs the operator against `server` until the block ends; enters once its watches
    are open and yields its runtime (tests read its metrics). Leaving stops it, and fails
    the test if it failed or did not stop within `STOP_TIMEOUT_S`."""
    url = str(server.url).rstrip("/")
    runtime = OperatorRuntime(options)

    def login() -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url, insecure=True, scheme="Bearer", token="test")

    def start(stop: threading.Event) -> Coroutine[Any, Any, None]:
        settings = operator_settings()
        # A watch kmock closes (a restart, a test's patch) reopens at once, not in seconds.
        settings.watching.reconnect_backoff = 0.1
        return run_operator(options, stop, login, settings, runtime)

    async with operator_thread(start):
        await watches_open(server, WATCHED)
        yield runtime


@contextlib.asynccontextmanager
async def operator_thread(
    start: Callable[[threading.Event], Coroutine[Any, Any, None]],
) -> AsyncIterator[None]:
    """Runs `start(stop_flag)` in its own thread and event loop until the block ends."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(start(stop))
        except BaseException as error:  # reported to the test below
            errors.append(error)

    thread = threading.Thread(target=run, name="operator", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, STOP_TIMEOUT_S)
        assert not thread.is_alive(), f"the operator did not stop within {STOP_TIMEOUT_S} s"
        assert not errors, f"the operator failed: {errors[0]!r}"
