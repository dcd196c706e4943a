"""`SwitchRole`: a worker changes role live over gRPC, only once its work has drained."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from triskel.common.api import Role
from triskel.v1 import worker_pb2, worker_pb2_grpc
from triskel.workers.server import start_worker_server

from support.engines import mock_engine

PROMPT = list(range(40))  # two full blocks of 16 tokens and a partial one


@pytest_asyncio.fixture
async def workers() -> AsyncIterator[list[worker_pb2_grpc.WorkerStub]]:
    """Two prefill workers, p0 and p1, each on its own port."""
    stubs, closers = [], []
    for name in ("p0", "p1"):
        engine = mock_engine(Role.PREFILL, name, capacity_tokens=4096)
        await engine.start()
        server, port = await start_worker_server(engine, "127.0.0.1:0")
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stubs.append(worker_pb2_grpc.WorkerStub(channel))
        closers.append((channel, server, engine))
    yield stubs
    for channel, server, engine in closers:
        await channel.close()
        await server.stop(None)
        await engine.close()


async def _role(stub: worker_pb2_grpc.WorkerStub) -> str:
    return str((await stub.GetInfo(worker_pb2.GetInfoRequest())).role)


def _prefill(request_id: str) -> worker_pb2.PrefillRequest:
    return worker_pb2.PrefillRequest(
        request_id=request_id, token_ids=PROMPT, max_tokens=4, kv_hold_ms=30_000
    )


@pytest.mark.asyncio
async def test_a_switched_prefill_worker_decodes_with_kv_pulled_from_a_peer(
    workers: list[worker_pb2_grpc.WorkerStub],
) -> None:
    p0, p1 = workers
    reply = await p1.SwitchRole(worker_pb2.SwitchRoleRequest(role="decode"))
    assert reply.info.role == "decode" and reply.info.worker_id == "p1"
    assert await _role(p1) == "decode"
    # p1 now serves the decode half of a P/D request, pulling its KV from p0 ...
    prefill = await p0.Prefill(_prefill("r"))
    decode = p1.Decode(
        worker_pb2.DecodeRequest(
            request_id="r",
            token_ids=PROMPT,
            max_tokens=4,
            ignore_eos=True,
            kv=prefill.kv,
            first_token_id=prefill.first_token_id,
        )
    )
    events = [response.WhichOneof("event") async for response in decode]
    assert events[0] == "kv_received" and events[-1] == "done"
    # ... and no longer prefills.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await p1.Prefill(_prefill("r2"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.asyncio
async def test_held_kv_blocks_the_switch_until_it_is_released(
    workers: list[worker_pb2_grpc.WorkerStub],
) -> None:
    p0, _ = workers
    await p0.Prefill(_prefill("held"))  # KV held for a pull that has not come yet
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await p0.SwitchRole(worker_pb2.SwitchRoleRequest(role="decode", drain_timeout_ms=0))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "in flight" in str(caught.value.details())
    assert await _role(p0) == "prefill"  # unchanged
    # With a drain bound, the switch waits for the hold to end, then happens.
    switch = asyncio.ensure_future(
        p0.SwitchRole(worker_pb2.SwitchRoleRequest(role="decode", drain_timeout_ms=10_000))
    )
    await asyncio.sleep(0.3)
    assert not switch.done()
    assert (await p0.Cancel(worker_pb2.CancelRequest(request_id="held"))).found
    reply = await switch
    assert reply.info.role == "decode" and reply.drained_ms >= 250


@pytest.mark.asyncio
async def test_the_prefix_cache_survives_a_switch(
    workers: list[worker_pb2_grpc.WorkerStub],
) -> None:
    p0, _ = workers
    await p0.Prefill(_prefill("warm"))
    await p0.Cancel(worker_pb2.CancelRequest(request_id="warm"))  # blocks stay cached
    await p0.SwitchRole(worker_pb2.SwitchRoleRequest(role="unified"))
    decode = p0.Decode(
        worker_pb2.DecodeRequest(request_id="d", token_ids=PROMPT, max_tokens=2, ignore_eos=True)
    )
    done = [r.done async for r in decode if r.WhichOneof("event") == "done"]
    assert done[0].num_cached_tokens == 32  # the two full blocks the prefill computed


@pytest.mark.parametrize("role", ["encode", "Decode", ""])
@pytest.mark.asyncio
async def test_a_role_it_cannot_switch_to_is_invalid(
    workers: list[worker_pb2_grpc.WorkerStub], role: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await workers[0].SwitchRole(worker_pb2.SwitchRoleRequest(role=role))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "role: must be one of decode, prefill, unified" in str(caught.value.details())


@pytest.mark.asyncio
async def test_an_encode_worker_never_switches() -> None:
    engine = mock_engine(Role.ENCODE, "e0")
    await engine.start()
    server, port = await start_worker_server(engine, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = worker_pb2_grpc.WorkerStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.SwitchRole(worker_pb2.SwitchRoleRequest(role="decode"))
            assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert await _role(stub) == "encode"
    finally:
        await server.stop(None)
        await engine.close()
