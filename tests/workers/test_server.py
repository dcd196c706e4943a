"""The worker's gRPC shell: real calls on port 0, status codes, streams, health, reflection."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from grpc.aio import AioRpcError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from triskel.common.api import Role
from triskel.v1 import worker_pb2, worker_pb2_grpc
from triskel.workers.server import start_worker_server

from support.engines import mock_engine


@pytest_asyncio.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    engine = mock_engine(Role.PREFILL, "prefill-0", capacity_tokens=4096)
    await engine.start()
    server, port = await start_worker_server(engine, "127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as open_channel:
        yield open_channel
    await server.stop(None)
    await engine.close()


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> worker_pb2_grpc.WorkerStub:
    return worker_pb2_grpc.WorkerStub(channel)


@pytest.mark.asyncio
async def test_get_info_describes_the_worker(stub: worker_pb2_grpc.WorkerStub) -> None:
    info = await stub.GetInfo(worker_pb2.GetInfoRequest())
    assert (info.worker_id, info.role, info.model, info.kv_connector) == (
        "prefill-0",
        "prefill",
        "m",
        "tcp",
    )
    # 4096 tokens of capacity at 16 tokens per block.
    assert (info.block_size_tokens, info.num_kv_blocks) == (16, 256)


@pytest.mark.asyncio
async def test_prefill_returns_a_handle_a_peer_can_use(stub: worker_pb2_grpc.WorkerStub) -> None:
    response = await stub.Prefill(
        worker_pb2.PrefillRequest(request_id="r", token_ids=list(range(40)), max_tokens=4)
    )
    assert response.HasField("kv") and response.kv.connector == "tcp"
    assert len(response.kv.block_checksums) == 3  # ceil(40 / 16)
    assert (await stub.Cancel(worker_pb2.CancelRequest(request_id="r"))).found


@pytest.mark.parametrize(
    ("call", "request_", "code", "fragment"),
    [
        (
            "Prefill",
            worker_pb2.PrefillRequest(request_id="", token_ids=[1], max_tokens=1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "request_id",
        ),
        (
            "Prefill",
            worker_pb2.PrefillRequest(request_id="r", token_ids=[], max_tokens=1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "prompt_token_ids",
        ),
        (
            "Prefill",
            worker_pb2.PrefillRequest(request_id="r", token_ids=[1], max_tokens=0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "max_tokens",
        ),
        (
            "Encode",
            worker_pb2.EncodeRequest(request_id="r"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "not served by a prefill worker",
        ),
    ],
)
@pytest.mark.asyncio
async def test_bad_calls_get_a_status_naming_the_problem(
    stub: worker_pb2_grpc.WorkerStub,
    call: str,
    request_: object,
    code: grpc.StatusCode,
    fragment: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, call)(request_)
    assert caught.value.code() == code
    assert fragment in (caught.value.details() or "")


@pytest.mark.asyncio
async def test_decode_on_a_prefill_worker_is_refused(stub: worker_pb2_grpc.WorkerStub) -> None:
    call = stub.Decode(worker_pb2.DecodeRequest(request_id="r", token_ids=[1], max_tokens=2))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.asyncio
async def test_stats_and_kv_event_streams(stub: worker_pb2_grpc.WorkerStub) -> None:
    stats = stub.StreamStats(worker_pb2.StreamStatsRequest(interval_ms=10))
    first = await anext(aiter(stats))
    assert first.worker_id == "prefill-0" and first.num_kv_blocks == 256
    stats.cancel()
    await stub.Prefill(
        worker_pb2.PrefillRequest(request_id="r", token_ids=list(range(40)), max_tokens=4)
    )
    events = stub.StreamKvEvents(worker_pb2.StreamKvEventsRequest())
    snapshot = await anext(aiter(events))
    assert snapshot.is_snapshot and snapshot.worker_id == "prefill-0"
    # The held prompt's two full blocks are cached; the snapshot lists them as one chain.
    assert [len(e.stored.block_hashes) for e in snapshot.events] == [2]
    events.cancel()


@pytest.mark.asyncio
async def test_health_and_reflection_are_served(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "triskel.v1.Worker"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for reply in reflection.ServerReflectionInfo(iter([request])):
        names = {s.name for s in reply.list_services_response.service}
        assert "triskel.v1.Worker" in names
        break


@pytest.mark.parametrize(
    "connector",
    [
        "carrier-pigeon",
        "x" * 10_000,  # echoed cut short: a refusal is no amplifier
    ],
)
@pytest.mark.asyncio
async def test_a_kv_handle_for_an_unknown_connector_is_the_callers_error(connector: str) -> None:
    # It was UNAVAILABLE (a failed pull), which the router retries elsewhere: no worker can
    # pull over a connector that does not exist.
    engine = mock_engine(Role.DECODE, "decode-0")
    await engine.start()
    server, port = await start_worker_server(engine, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            handle = worker_pb2.KvHandle(
                request_id="r",
                worker_id="prefill-0",
                connector=connector,
                address="127.0.0.1:1",
                num_tokens=16,
                block_bytes=64,
                block_checksums=[1],
            )
            request = worker_pb2.DecodeRequest(
                request_id="r", token_ids=list(range(16)), max_tokens=4, kv=handle, first_token_id=7
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in worker_pb2_grpc.WorkerStub(channel).Decode(request):
                    pass
    finally:
        await server.stop(None)
        await engine.close()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details() or ""
    assert details.startswith("kv.connector: unknown connector ")
    assert "known: tcp, mooncake, nccl" in details
    assert len(details) < 200


@pytest.mark.asyncio
async def test_a_request_too_big_for_the_kv_pool_is_refused_without_its_figures(
    stub: worker_pb2_grpc.WorkerStub, caplog: pytest.LogCaptureFixture
) -> None:
    # The pool holds 256 blocks of 16 tokens (4,096); the context window is far larger.
    # The refusal read "needs 263 KV blocks but the pool has 256": the worker's capacity,
    # told to any client. It says what to do; the log keeps the figures.
    request = worker_pb2.PrefillRequest(request_id="r", token_ids=[1] * 4000, max_tokens=200)
    logger = "triskel.workers.mock_engine"
    with caplog.at_level(logging.INFO, logger=logger), pytest.raises(AioRpcError) as caught:
        await stub.Prefill(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == (
        "max_tokens: prompt (4000 tokens) + max_tokens (200) do not fit this deployment's "
        "KV cache; send a shorter prompt or a smaller max_tokens"
    )
    assert "needs 263 KV blocks but the pool has 256" in caplog.text
