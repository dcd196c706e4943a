"""Waiting for a worker's work in flight to end: before it stops (SIGTERM) and before
it changes role (`SwitchRole`).

KV held for a decode worker's pull counts as work: a prefill worker that stopped or
switched with KV still held would fail the pull and the request with it.
"""

from __future__ import annotations

import asyncio

from triskel.workers.api import Engine, LoadSnapshot


def work_in_flight(load: LoadSnapshot) -> int:
    return load.num_waiting_requests + load.num_running_requests + load.num_kv_holds


async def drain(engine: Engine, timeout_s: float, poll_s: float = 0.05) -> bool:
    """Waits until `engine` has no queued or running request and no KV held for a pull;
    False when `timeout_s` passed first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while work_in_flight(engine.load()) > 0:
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(poll_s)
    return True
