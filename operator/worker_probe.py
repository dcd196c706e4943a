"""How much work a worker still has: what a drain waits on.

Asks the worker's own `StreamStats` for one snapshot. Queued and running requests
count, and so do KV holds: a prefill worker holding KV for a decode worker's pull
must stay until the pull is done, or the decode side would fail.
"""

from __future__ import annotations

from triskel.common.tls import GrpcClientTls
from triskel.common.worker_load import PROBE_TIMEOUT_S, worker_load


async def work_in_flight(
    address: str, timeout_s: float = PROBE_TIMEOUT_S, tls: GrpcClientTls | None = None
) -> int | None:
    """Requests and KV holds on the worker at `address`; None when it does not answer
    (a worker that is gone has nothing left to finish). `tls`: the operator's client
    certificate, for workers serving mTLS."""
    load = await worker_load(address, timeout_s, tls)
    return None if load is None else load.num_in_flight
