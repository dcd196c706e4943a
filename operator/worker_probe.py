"""How much work a worker still has: what a drain waits on.

Asks the worker's own `StreamStats` for one snapshot. Queued and running requests
count, and so do KV holds: a prefill worker holding KV for a decode worker's pull
must stay until the pull is done, or the decode side would fail.
"""

from __future__ import annotations

import asyncio

import grpc

from triskel.v1 import worker_pb2, worker_pb2_grpc

PROBE_TIMEOUT_S = 2.0


async def work_in_flight(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> int | None:
    """Requests and KV holds on the worker at `address`; None when it does not answer
    (a worker that is gone has nothing left to finish)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = worker_pb2_grpc.WorkerStub(channel)
        call = stub.StreamStats(worker_pb2.StreamStatsRequest(interval_ms=1000))
        try:
            stats = await asyncio.wait_for(call.read(), timeout_s)
        except (grpc.aio.AioRpcError, TimeoutError):
            return None
        finally:
            call.cancel()
    if stats is grpc.aio.EOF:
        return None
    work: int = stats.num_waiting_requests + stats.num_running_requests + stats.num_kv_holds
    return work
