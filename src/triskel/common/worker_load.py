"""One load snapshot of a worker, from its own `StreamStats`.

`triskel up`'s autoscaler counts each pool's queued and running requests with it, and
every drain (`triskel up`'s and the operator's) waits until a leaving worker has nothing
in flight. KV holds
count as work in flight: a prefill worker holding KV for a decode worker's pull must
stay until the pull is done.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc

from triskel.common.tls import GrpcClientTls
from triskel.v1 import worker_pb2, worker_pb2_grpc

PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    num_waiting_requests: int
    num_running_requests: int
    num_kv_holds: int

    @property
    def num_in_flight(self) -> int:
        return self.num_waiting_requests + self.num_running_requests + self.num_kv_holds


async def worker_load(
    address: str, timeout_s: float = PROBE_TIMEOUT_S, tls: GrpcClientTls | None = None
) -> WorkerLoad | None:
    """The worker's load now; None when it does not answer (gone, or stopping). A worker
    serving mTLS is asked with `tls` (a channel per call: renewals need nothing more)."""
    if tls is None:
        channel = grpc.aio.insecure_channel(address)
    else:
        credentials = tls.credentials()[1]
        channel = grpc.aio.secure_channel(address, credentials, options=tls.channel_options())
    async with channel:
        call = worker_pb2_grpc.WorkerStub(channel).StreamStats(
            worker_pb2.StreamStatsRequest(interval_ms=1000)
        )
        try:
            stats = await asyncio.wait_for(call.read(), timeout_s)
        except (grpc.aio.AioRpcError, TimeoutError):
            return None
        finally:
            call.cancel()
    if stats is grpc.aio.EOF:
        return None
    return WorkerLoad(stats.num_waiting_requests, stats.num_running_requests, stats.num_kv_holds)
