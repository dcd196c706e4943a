"""`run_worker`: the whole worker in this process, on port 0, with its KV host."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from triskel.common.api import WorkerPoolSpec
from triskel.v1 import worker_pb2, worker_pb2_grpc
from triskel.workers.process import WorkerProcessConfig, drain, run_worker

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
    # The prefill below leaves KV held for a pull that never comes: do not wait for it.
    fields = {"worker_id": "w", "pool": POOL, "grpc_address": "127.0.0.1:0", "drain_timeout_s": 0}
    if kv_host is not None:
        fields["kv_host"] = kv_host
    config = WorkerProcessConfig.model_validate(fields)
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


@pytest.mark.asyncio
async def test_stopping_lets_a_running_request_finish_before_the_server_goes() -> None:
    # 1,000 decode steps at half speed take seconds: longer than the server's stop grace
    # (2 s), so without the drain the stream would be cut.
    pool = WorkerPoolSpec.model_validate(
        {"role": "unified", "model": "m", "profile": {"kvCapacityTokens": 4096, "timeScale": 0.5}}
    )
    config = WorkerProcessConfig(worker_id="w", pool=pool, drain_timeout_s=30)
    address: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(config, address.set_result, stop))
    async with grpc.aio.insecure_channel(await asyncio.wait_for(address, 30)) as channel:
        request = worker_pb2.DecodeRequest(
            request_id="long", token_ids=list(range(64)), max_tokens=1000, ignore_eos=True
        )
        stream = worker_pb2_grpc.WorkerStub(channel).Decode(request)
        num_tokens = 0
        async for reply in stream:
            num_tokens += len(reply.tokens.token_ids) if reply.HasField("tokens") else 0
            if num_tokens == 5:
                stop.set()  # SIGTERM, as Kubernetes sends it
        assert num_tokens == 1000  # every token arrived: the drain waited for the request
    await asyncio.wait_for(task, 30)


@pytest.mark.asyncio
async def test_a_drain_gives_up_at_its_deadline() -> None:
    class Busy:
        def load(self) -> object:
            return type(
                "L", (), {"num_waiting_requests": 1, "num_running_requests": 0, "num_kv_holds": 0}
            )()

    assert await drain(Busy(), timeout_s=0.05) is False  # type: ignore[arg-type]
