"""`run_worker`: the whole worker in this process, on port 0, with its KV host."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from triskel.common.api import WorkerPoolSpec
from triskel.v1 import worker_pb2, worker_pb2_grpc
from triskel.workers.process import WorkerProcessConfig, run_worker

POOL = WorkerPoolSpec.model_validate(
    {"role": "prefill", "model": "m", "profile": {"kvCapacityTokens": 2048, "timeScale": 0}}
)


@pytest.mark.parametrize(
    ("kv_host", "expected"),
    [
        # The default: peers on this machine only (triskel up).
        (None, "127.0.0.1:"),
        # In a pod, the pod IP: a peer in another pod must reach the KV listener.
        # 127.0.0.2 stands in for it here: a loopback address, yet not the default.
        ("127.0.0.2", "127.0.0.2:"),
    ],
)
@pytest.mark.asyncio
async def test_kv_handles_advertise_the_kv_host(kv_host: str | None, expected: str) -> None:
    fields = {} if kv_host is None else {"kv_host": kv_host}
    config = WorkerProcessConfig(worker_id="w", pool=POOL, grpc_address="127.0.0.1:0", **fields)
    address: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(config, address.set_result, stop))
    try:
        async with grpc.aio.insecure_channel(await asyncio.wait_for(address, 30)) as channel:
            reply = await worker_pb2_grpc.WorkerStub(channel).Prefill(
                worker_pb2.PrefillRequest(request_id="r", token_ids=list(range(40)), max_tokens=2),
                timeout=10,
            )
        assert reply.kv.address.startswith(expected)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
