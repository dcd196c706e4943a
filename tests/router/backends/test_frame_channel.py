"""Worker frames (frame_channel.py behind GrpcWorkerClient) against real mock workers and
tiny fake ones: the same answers and failures as gRPC, deadlines and early closes that
stop the worker's work, one slow reader that stalls nobody, and a worker that leaves or
breaks the protocol ending its streams with UNAVAILABLE instead of a hang."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest

from triskel.common.frames.codec import HEADER, MAX_PAYLOAD_BYTES, PREFACE, FrameKind, encode_frame
from triskel.router.backends import frame_channel
from triskel.router.backends.dialing import WorkerDialing
from triskel.router.backends.frame_channel import FrameChannel
from triskel.router.backends.grpc_worker import GrpcWorkerClient
from triskel.router.types import TokenEvent
from triskel.router.worker_client import (
    CallFailure,
    DecodeCall,
    DecodeEvent,
    DecodeFinished,
    KvPulled,
    PrefillCall,
    WorkerCallError,
)
from triskel.v1 import worker_frames_pb2, worker_pb2
from triskel.workers.process import WorkerProcessConfig, build_mock_engine
from triskel.workers.server import start_worker_server

from support.local_workers import local_worker, mock_pool
from support.waiting import wait_until

_Code = worker_frames_pb2.FrameErrorCode
# At time scale 1 a decode step takes ~8 ms: 3,000 tokens run for ~25 s, far longer
# than any test waits, so a request still running at a check was not stopped.
_SLOW = 1.0
_LONG_DECODE_TOKENS = 3000
_IDLE_TIMEOUT_S = 5.0


@contextlib.asynccontextmanager
async def _connected(address: str, *, frames: bool = True) -> AsyncIterator[GrpcWorkerClient]:
    client = GrpcWorkerClient(address, WorkerDialing(frames=frames))
    try:
        await client.connect(10)
        yield client
    finally:
        await client.close()


def _long_decode(request_id: str) -> DecodeCall:
    return DecodeCall(request_id, [1, 2, 3, 4], _LONG_DECODE_TOKENS, ignore_eos=True)


async def _decode(client: GrpcWorkerClient, call: DecodeCall) -> list[DecodeEvent]:
    return [event async for event in client.decode(call, timeout_s=30)]


@dataclass(frozen=True, slots=True)
class _Decoded:
    """A decode's outcome, whatever the grouping of tokens into events (the worker
    coalesces the tokens of steps it made while it was sending)."""

    token_ids: tuple[int, ...]
    num_kv_pulls: int
    finished: DecodeFinished


def _decoded(events: list[DecodeEvent]) -> _Decoded:
    assert isinstance(events[-1], DecodeFinished), events[-1]
    assert not any(isinstance(e, DecodeFinished) for e in events[:-1]), events
    token_ids = tuple(i for e in events if isinstance(e, TokenEvent) for i in e.token_ids)
    num_kv_pulls = sum(isinstance(e, KvPulled) for e in events)
    return _Decoded(token_ids, num_kv_pulls, events[-1])


async def _stats(client: GrpcWorkerClient) -> worker_pb2.WorkerStats:
    """The worker's load now (StreamStats' first message, sent at once)."""
    stream = client.stub.StreamStats(worker_pb2.StreamStatsRequest(interval_ms=1000))
    try:
        stats = await stream.read()
    finally:
        stream.cancel()
    assert isinstance(stats, worker_pb2.WorkerStats), "the stats stream ended at once"
    return stats


async def _wait_idle(client: GrpcWorkerClient) -> None:
    """Until the worker runs and queues nothing; AssertionError after _IDLE_TIMEOUT_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _IDLE_TIMEOUT_S
    while True:
        stats = await _stats(client)
        if stats.num_running_requests == 0 and stats.num_waiting_requests == 0:
            return
        assert loop.time() < deadline, f"the worker still runs the request: {stats}"
        await asyncio.sleep(0.02)


@contextlib.contextmanager
def _refusing_port() -> Iterator[int]:
    """A loopback port bound but never listened on: connections to it are refused, and
    nothing else can take it while the block runs."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


# -- the same answers as gRPC ---------------------------------------------------------


@pytest.mark.asyncio
async def test_decode_over_frames_yields_what_grpc_yields() -> None:
    # A seed and the prompt fix the mock's tokens and natural length, and each worker
    # is fresh (no cached prefix), so the two transports must agree on every field.
    call = DecodeCall("r1", [11, 12, 13, 14, 15], max_tokens=40, ignore_eos=False, seed=7)
    async with (
        local_worker(mock_pool("unified"), "frames") as framed_worker,
        local_worker(mock_pool("unified"), "grpc") as grpc_worker,
        _connected(framed_worker.endpoints.grpc) as over_frames,
        _connected(grpc_worker.endpoints.grpc, frames=False) as over_grpc,
    ):
        assert over_frames.serves_frames
        assert not over_grpc.serves_frames  # the worker serves frames; the router opted out
        framed = _decoded(await _decode(over_frames, call))
        plain = _decoded(await _decode(over_grpc, call))
    assert framed == plain
    assert framed.finished.num_generated_tokens == len(framed.token_ids) > 0


@pytest.mark.asyncio
async def test_prefill_over_frames_replies_what_grpc_replies() -> None:
    call = PrefillCall("p1", list(range(1, 40)), max_tokens=16, kv_hold_ms=30_000, seed=7)
    async with (
        local_worker(mock_pool("prefill"), "frames") as framed_worker,
        local_worker(mock_pool("prefill"), "grpc") as grpc_worker,
        _connected(framed_worker.endpoints.grpc) as over_frames,
        _connected(grpc_worker.endpoints.grpc, frames=False) as over_grpc,
    ):
        assert over_frames.serves_frames and not over_grpc.serves_frames
        framed = await over_frames.prefill(call, timeout_s=10)
        plain = await over_grpc.prefill(call, timeout_s=10)
        assert framed.first_token == plain.first_token
        assert framed.num_cached_tokens == plain.num_cached_tokens
        assert framed.finish_reason == plain.finish_reason is None
        assert framed.kv is not None and plain.kv is not None
        assert (framed.kv.backend, framed.kv.connector) == (plain.kv.backend, plain.kv.connector)
        framed_handle, plain_handle = framed.kv.payload, plain.kv.payload
        assert isinstance(framed_handle, worker_pb2.KvHandle)
        assert isinstance(plain_handle, worker_pb2.KvHandle)
        # The checksums follow the prompt's KV content, the same on both workers.
        assert framed_handle.num_tokens == plain_handle.num_tokens == len(call.token_ids)
        assert framed_handle.block_checksums == plain_handle.block_checksums
        # Cancel over frames frees the hold the prefill left, as over gRPC.
        for client in (over_frames, over_grpc):
            assert (await _stats(client)).num_kv_holds == 1
            await client.cancel("p1")
            assert (await _stats(client)).num_kv_holds == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("pool_role", "call_kind", "failure", "field_name"),
    [
        # calls.py refuses an empty request id, naming the field, on both transports.
        ("unified", "decode", CallFailure.INVALID_ARGUMENT, "request_id"),
        ("unified", "prefill", CallFailure.INVALID_ARGUMENT, "request_id"),
        # A role that does not serve the call: FAILED_PRECONDITION, retriable elsewhere.
        ("prefill", "decode", CallFailure.UNAVAILABLE, ""),
        ("decode", "prefill", CallFailure.UNAVAILABLE, ""),
    ],
)
async def test_a_worker_error_is_the_same_failure_on_both_transports(
    pool_role: str, call_kind: str, failure: CallFailure, field_name: str
) -> None:
    request_id = "" if failure is CallFailure.INVALID_ARGUMENT else "r1"

    async def call(client: GrpcWorkerClient) -> None:
        if call_kind == "decode":
            await _decode(client, DecodeCall(request_id, [1, 2, 3], 4, ignore_eos=True))
        else:
            await client.prefill(PrefillCall(request_id, [1, 2, 3], 4, kv_hold_ms=1000), 10)

    errors: list[WorkerCallError] = []
    async with local_worker(mock_pool(pool_role)) as worker:
        for frames in (True, False):
            async with _connected(worker.endpoints.grpc, frames=frames) as client:
                assert client.serves_frames is frames
                with pytest.raises(WorkerCallError) as refused:
                    await call(client)
                errors.append(refused.value)
    framed, plain = errors
    assert (framed.failure, framed.field_name) == (failure, field_name)
    assert (plain.failure, plain.field_name, plain.details) == (
        framed.failure,
        framed.field_name,
        framed.details,
    )


# -- workers without frames -----------------------------------------------------------


@pytest.mark.asyncio
async def test_a_worker_without_frames_is_called_over_grpc() -> None:
    async with (
        local_worker(mock_pool("unified"), frame_port=None) as worker,
        _connected(worker.endpoints.grpc) as client,
    ):
        assert worker.endpoints.frames is None
        assert not client.serves_frames
        decoded = _decoded(await _decode(client, DecodeCall("r1", [1, 2, 3], 8, True, seed=1)))
        assert decoded.finished == DecodeFinished("length", 8, 0)
        reply = await client.prefill(PrefillCall("r2", [4, 5, 6], 8, kv_hold_ms=30_000), 10)
        assert reply.kv is not None
        await client.cancel("r2")
        assert (await _stats(client)).num_kv_holds == 0


@pytest.mark.asyncio
async def test_an_unreachable_frame_port_fails_without_naming_it() -> None:
    with _refusing_port() as port:
        channel = FrameChannel("127.0.0.1", port, None)
        with pytest.raises(WorkerCallError) as refused:
            await channel.connect(timeout_s=5)
        await channel.close()
    assert refused.value.failure is CallFailure.UNAVAILABLE
    # Errors reach clients: they never carry internal addresses.
    assert "127.0.0.1" not in refused.value.details
    assert str(port) not in refused.value.details


@pytest.mark.asyncio
async def test_a_worker_whose_frame_port_is_unreachable_is_called_over_grpc(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = WorkerProcessConfig.model_validate({"worker_id": "w0", "pool": mock_pool("unified")})
    engine = build_mock_engine(config)
    await engine.start()
    try:
        with _refusing_port() as port:
            # GetInfo advertises a frame port nobody listens on (a NetworkPolicy from
            # before frames, say).
            server, grpc_port = await start_worker_server(engine, "127.0.0.1:0", None, port)
            try:
                with caplog.at_level(logging.WARNING, "triskel.router.backends.grpc_worker"):
                    async with _connected(f"127.0.0.1:{grpc_port}") as client:
                        assert not client.serves_frames
                        decoded = _decoded(
                            await _decode(client, DecodeCall("r1", [1, 2, 3], 8, True))
                        )
                        assert decoded.finished.num_generated_tokens == 8
            finally:
                await server.stop(0)
    finally:
        await engine.close()
    assert any("gRPC only" in record.getMessage() for record in caplog.records)


# -- deadlines and early closes stop the worker's work --------------------------------


@pytest.mark.asyncio
async def test_a_decode_past_its_deadline_is_a_timeout_and_stops_on_the_worker() -> None:
    async with (
        local_worker(mock_pool("unified", time_scale=_SLOW)) as worker,
        _connected(worker.endpoints.grpc) as client,
    ):
        assert client.serves_frames
        received: list[DecodeEvent] = []
        with pytest.raises(WorkerCallError) as late:
            async for event in client.decode(_long_decode("r1"), timeout_s=0.2):
                received.append(event)
        assert late.value.failure is CallFailure.TIMEOUT
        assert received, "the decode was refused, not cut short by its deadline"
        await _wait_idle(client)


@pytest.mark.asyncio
async def test_closing_a_decode_early_aborts_it_on_the_worker() -> None:
    async with (
        local_worker(mock_pool("unified", time_scale=_SLOW)) as worker,
        _connected(worker.endpoints.grpc) as client,
    ):
        assert client.serves_frames
        events = client.decode(_long_decode("r1"), timeout_s=60)
        assert isinstance(await anext(events), TokenEvent)
        assert (await _stats(client)).num_running_requests == 1
        await events.aclose()  # RESET: with a 60 s deadline, nothing else stops it
        await _wait_idle(client)


@pytest.mark.asyncio
async def test_a_stream_never_read_stalls_no_other_on_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One connection: both streams share its reader.
    monkeypatch.setattr(frame_channel, "NUM_CONNECTIONS", 1)
    async with (
        local_worker(mock_pool("unified", time_scale=0.1)) as worker,
        _connected(worker.endpoints.grpc) as client,
    ):
        stalled = client.decode(_long_decode("stalled"), timeout_s=60)
        assert isinstance(await anext(stalled), TokenEvent)
        # Meanwhile the stalled stream gets a reply per engine step, none of them read.
        async with asyncio.timeout(10):
            decoded = _decoded(await _decode(client, DecodeCall("read", [5, 6, 7], 100, True)))
        assert decoded.finished == DecodeFinished("length", 100, 0)
        # What arrived for the stalled stream waited for it, in order.
        assert isinstance(await anext(stalled), TokenEvent)
        await stalled.aclose()
        await _wait_idle(client)


# -- a worker that leaves or breaks the protocol --------------------------------------


@pytest.mark.asyncio
async def test_a_worker_that_stops_mid_decode_ends_it_with_unavailable() -> None:
    # No drain: the worker stops after its servers' 2 s grace, the decode still running.
    async with (
        local_worker(mock_pool("unified", time_scale=_SLOW), drain_timeout_s=0.0) as worker,
        _connected(worker.endpoints.grpc) as client,
    ):
        assert client.serves_frames
        events = client.decode(_long_decode("r1"), timeout_s=60)
        assert isinstance(await anext(events), TokenEvent)
        stopping = asyncio.create_task(worker.stop())
        try:
            with pytest.raises(WorkerCallError) as lost:
                async with asyncio.timeout(10):  # a hang fails as TimeoutError
                    async for _ in events:
                        pass
            assert lost.value.failure is CallFailure.UNAVAILABLE
        finally:
            await events.aclose()
            await stopping


_Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _fake_worker(serve: _Handler) -> AsyncIterator[int]:
    """A frame port on loopback whose connections `serve` handles; yields the port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await serve(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, FrameKind, bytes]:
    length, stream_id, kind = HEADER.unpack(await reader.readexactly(HEADER.size))
    return stream_id, FrameKind(kind), await reader.readexactly(length)


async def _read_call(reader: asyncio.StreamReader) -> int:
    """Reads the preface and the first CALL; its stream id."""
    assert await reader.readexactly(len(PREFACE)) == PREFACE
    stream_id, kind, payload = await _read_frame(reader)
    assert kind is FrameKind.CALL
    worker_frames_pb2.FrameCall.FromString(payload)
    return stream_id


def _cancel_call() -> worker_frames_pb2.FrameCall:
    return worker_frames_pb2.FrameCall(cancel=worker_pb2.CancelRequest(request_id="r1"))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "violation",
    [
        # The wire knows kinds 1 to 5.
        lambda stream_id: HEADER.pack(0, stream_id, 9),
        # CALL and RESET go from the router to the worker, never back.
        lambda stream_id: encode_frame(stream_id, FrameKind.CALL, b""),
        lambda stream_id: encode_frame(stream_id, FrameKind.RESET),
        # A length over the limit: the header alone is refused, no payload awaited.
        lambda stream_id: HEADER.pack(MAX_PAYLOAD_BYTES + 1, stream_id, FrameKind.REPLY),
        # An ERROR whose payload is no FrameError.
        lambda stream_id: encode_frame(stream_id, FrameKind.ERROR, b"\xff\xff\xff"),
    ],
    ids=["unknown-kind", "call-from-worker", "reset-from-worker", "oversized", "bad-error"],
)
async def test_a_protocol_violation_ends_pending_streams_with_unavailable(
    violation: Callable[[int], bytes],
) -> None:
    client_left = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream_id = await _read_call(reader)
        writer.write(violation(stream_id))
        await writer.drain()
        client_left.set_result(await reader.read())  # b"" once the client closes

    async with _fake_worker(serve) as port:
        channel = FrameChannel("127.0.0.1", port, None)
        try:
            stream = await channel.call(_cancel_call(), timeout_s=10)
            with pytest.raises(WorkerCallError) as broken:
                await stream.next()
            assert broken.value.failure is CallFailure.UNAVAILABLE
            stream.close()
            # The client dropped the connection that broke the protocol.
            assert await asyncio.wait_for(client_left, 5) == b""
        finally:
            await channel.close()


@pytest.mark.asyncio
async def test_a_call_unanswered_by_its_deadline_times_out_and_is_reset() -> None:
    resets: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    called: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        called.set_result(await _read_call(reader))  # and never answer
        stream_id, kind, _ = await _read_frame(reader)
        assert kind is FrameKind.RESET
        resets.set_result(stream_id)

    async with _fake_worker(serve) as port:
        channel = FrameChannel("127.0.0.1", port, None)
        try:
            stream = await channel.call(_cancel_call(), timeout_s=0.2)
            with pytest.raises(WorkerCallError) as late:
                await asyncio.wait_for(stream.next(), 5)
            assert late.value.failure is CallFailure.TIMEOUT
            stream.close()
            assert await asyncio.wait_for(resets, 5) == await called
        finally:
            await channel.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("code", "field", "failure", "field_name"),
    [
        # The field travels as gRPC's "field: message" details do.
        (
            _Code.FRAME_ERROR_CODE_INVALID_ARGUMENT,
            "max_tokens",
            CallFailure.INVALID_ARGUMENT,
            "max_tokens",
        ),
        # No field named: the request as a whole, as for gRPC details without one.
        (_Code.FRAME_ERROR_CODE_INVALID_ARGUMENT, "", CallFailure.INVALID_ARGUMENT, "request"),
        (_Code.FRAME_ERROR_CODE_DEADLINE_EXCEEDED, "", CallFailure.TIMEOUT, ""),
        # A role that does not serve the call, a worker that cannot now: retry elsewhere.
        (_Code.FRAME_ERROR_CODE_FAILED_PRECONDITION, "", CallFailure.UNAVAILABLE, ""),
        (_Code.FRAME_ERROR_CODE_UNAVAILABLE, "", CallFailure.UNAVAILABLE, ""),
        # A code this router does not know (a newer worker's): not the caller's fault.
        (_Code.FRAME_ERROR_CODE_UNSPECIFIED, "", CallFailure.UNAVAILABLE, ""),
    ],
)
async def test_an_error_frame_maps_as_a_grpc_status_does(
    code: worker_frames_pb2.FrameErrorCode,
    field: str,
    failure: CallFailure,
    field_name: str,
) -> None:
    error = worker_frames_pb2.FrameError(code=code, field=field, message="the worker's words")
    after_error: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream_id = await _read_call(reader)
        writer.write(encode_frame(stream_id, FrameKind.ERROR, error.SerializeToString()))
        await writer.drain()
        after_error.set_result(await reader.read())

    async with _fake_worker(serve) as port:
        channel = FrameChannel("127.0.0.1", port, None)
        try:
            stream = await channel.call(_cancel_call(), timeout_s=10)
            with pytest.raises(WorkerCallError) as refused:
                await stream.next()
            stream.close()
        finally:
            await channel.close()
        # The ERROR ended the stream: closing it sent no RESET.
        assert await asyncio.wait_for(after_error, 5) == b""
    assert (refused.value.failure, refused.value.field_name) == (failure, field_name)
    assert refused.value.details == "the worker's words"


@pytest.mark.asyncio
async def test_a_call_still_connecting_when_the_channel_closes_is_unavailable() -> None:
    # Discovery closes a removed worker's client while a request picked it a moment before
    # opens a connection: the call must fail (retriable), not run on a closed client.
    async with local_worker(mock_pool("unified")) as worker:
        assert worker.endpoints.frames is not None
        host, port = worker.endpoints.frames.rsplit(":", 1)
        channel = FrameChannel(host, int(port), None)
        call = worker_frames_pb2.FrameCall(cancel=worker_pb2.CancelRequest(request_id="r"))
        calling = asyncio.create_task(channel.call(call, 5.0))
        await asyncio.sleep(0)  # the call is opening its connection
        await channel.close()
        with pytest.raises(WorkerCallError) as closed:
            await calling
        assert closed.value.failure is CallFailure.UNAVAILABLE
        with pytest.raises(WorkerCallError):  # and later calls too
            await channel.call(call, 5.0)


# -- subscriptions: load reports and KV events ----------------------------------------


@pytest.mark.asyncio
async def test_load_reports_and_kv_events_come_over_frames() -> None:
    async with (
        local_worker(mock_pool("unified")) as worker,
        _connected(worker.endpoints.grpc) as client,
    ):
        assert client.serves_frames
        reports = aiter(client.watch_load(interval_ms=10))
        first, second = await anext(reports), await anext(reports)
        await reports.aclose()  # type: ignore[attr-defined]
        assert (first.num_running_requests, second.num_running_requests) == (0, 0)
        assert first.num_kv_blocks > 0
        # A request stores blocks: its event follows the (empty) snapshot.
        subscription = client.kv_events()
        batches = aiter(subscription)
        assert (await anext(batches)).is_snapshot
        await _decode(client, DecodeCall("r1", list(range(64)), 2, ignore_eos=True))
        live = await anext(batches)
        assert not live.is_snapshot
        assert any(event.HasField("stored") for event in live.events)
        subscription.cancel()  # its RESET: the test below, on a fake worker


@pytest.mark.asyncio
async def test_cancelling_a_frame_subscription_resets_it_and_an_end_ends_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(frame_channel, "NUM_CONNECTIONS", 1)  # both calls on one
    calls: list[tuple[int, FrameKind]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream_id = await _read_call(reader)
        calls.append((stream_id, FrameKind.CALL))
        batch = worker_pb2.KvEventBatch(worker_id="w", is_snapshot=True)
        writer.write(encode_frame(stream_id, FrameKind.REPLY, batch.SerializeToString()))
        second, kind, _ = await _read_frame(reader)  # the next: ended by the worker
        assert kind is FrameKind.CALL
        writer.write(encode_frame(second, FrameKind.END))
        stream_id, kind, _ = await _read_frame(reader)  # the first one's RESET
        calls.append((stream_id, kind))
        await reader.read()

    async with _fake_worker(serve) as port:
        channel = FrameChannel("127.0.0.1", port, None)
        try:
            call = worker_frames_pb2.FrameCall(kv_events=worker_pb2.StreamKvEventsRequest())
            first = await channel.call(call, None)
            assert await first.next() is not None
            ended = await channel.call(call, None)
            assert await ended.next() is None  # END: the worker cut it, no error
            ended.close()  # nothing to reset
            first.close()
            await wait_until(lambda: len(calls) == 2)
            assert calls[1] == (calls[0][0], FrameKind.RESET)
        finally:
            await channel.close()


@pytest.mark.asyncio
async def test_stream_ids_wrap_around_the_ones_still_open(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ids wrap after 2^32 calls on a connection; a subscription opened before still runs.
    monkeypatch.setattr(frame_channel, "_MAX_STREAM_ID", 3)
    monkeypatch.setattr(frame_channel, "NUM_CONNECTIONS", 1)
    opened: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened.append(await _read_call(reader))
        while True:
            stream_id, kind, _ = await _read_frame(reader)
            if kind is FrameKind.CALL:
                opened.append(stream_id)

    async with _fake_worker(serve) as port:
        channel = FrameChannel("127.0.0.1", port, None)
        try:
            subscription = await channel.call(_cancel_call(), None)  # id 1, kept open
            for _ in range(4):
                (await channel.call(_cancel_call(), 10)).close()
            await wait_until(lambda: len(opened) == 5)
            assert opened == [1, 2, 3, 2, 3]  # 1 is skipped while its stream is open
            subscription.close()
        finally:
            await channel.close()


@pytest.mark.asyncio
async def test_tokens_already_buffered_go_on_as_one_event() -> None:
    # A router that falls behind relays per chunk, not per token: what arrived while it
    # was busy is joined (and a KV notice between tokens keeps its place); the last
    # tokens say the finish follows them.
    def tokens(token_id: int, text: str, cached: int | None = None) -> worker_pb2.DecodeResponse:
        return worker_pb2.DecodeResponse(
            tokens=worker_pb2.DecodeTokens(
                token_ids=[token_id], text=text, num_cached_tokens=cached
            )
        )

    replies = [
        tokens(1, "a", cached=16),  # the stream's first tokens tell the cached prompt
        tokens(2, "b"),
        worker_pb2.DecodeResponse(),  # a kind this router does not know: skipped
        tokens(3, "c"),
        worker_pb2.DecodeResponse(kv_received=worker_pb2.KvReceived(num_bytes=64)),
        tokens(4, "d"),
        tokens(5, "e"),
        worker_pb2.DecodeResponse(
            done=worker_pb2.DecodeDone(finish_reason="length", num_generated_tokens=5)
        ),
    ]

    events, error = await _decode_from_one_write(
        lambda stream_id: b"".join(
            encode_frame(stream_id, FrameKind.REPLY, reply.SerializeToString()) for reply in replies
        )
    )
    assert error is None
    assert events == [
        TokenEvent("abc", (1, 2, 3), 16),
        KvPulled(64, 0.0),
        TokenEvent("de", (4, 5), finish_follows=True),  # the finish came with them
        DecodeFinished("length", 5, 0),
    ]


@pytest.mark.asyncio
async def test_a_stream_gives_its_replies_in_order_then_its_end() -> None:
    stream = frame_channel.FrameStream(frame_channel.FrameConnection(), 1, None)
    stream.reply(b"one")
    stream.reply(b"two")
    stream.reply(b"three")
    assert await stream.next() == b"one"
    assert stream.take_ready() == [b"two", b"three"]  # taken at once, in order
    assert stream.take_ready() == []
    stream.reply(b"four")
    stream.end(None)  # the worker's END: after the reply already here
    assert stream.take_ready() == [b"four"]
    assert await stream.next() is None


@pytest.mark.asyncio
async def test_a_stream_error_comes_after_the_replies_before_it_and_stays() -> None:
    stream = frame_channel.FrameStream(frame_channel.FrameConnection(), 1, None)
    stream.reply(b"one")
    stream.end(WorkerCallError(CallFailure.UNAVAILABLE, "the worker's connection closed"))
    stream.reply(b"late")  # after the end: dropped
    stream.end(None)  # a second end changes nothing
    assert await stream.next() == b"one"
    for _ in range(2):  # raised on every later read, never a hang
        with pytest.raises(WorkerCallError) as raised:
            await stream.next()
        assert raised.value.failure is CallFailure.UNAVAILABLE
    assert stream.take_ready() == []


@pytest.mark.asyncio
async def test_a_waiting_read_wakes_for_a_reply_and_for_the_end() -> None:
    stream = frame_channel.FrameStream(frame_channel.FrameConnection(), 1, None)
    reading = asyncio.create_task(stream.next())
    await asyncio.sleep(0)
    stream.reply(b"one")
    assert await reading == b"one"
    reading = asyncio.create_task(stream.next())
    await asyncio.sleep(0)
    stream.end(None)
    assert await reading is None


@pytest.mark.asyncio
async def test_tokens_read_with_an_error_after_them_are_relayed_before_it() -> None:
    def tokens(token_id: int, text: str) -> bytes:
        reply = worker_pb2.DecodeResponse(
            tokens=worker_pb2.DecodeTokens(token_ids=[token_id], text=text)
        )
        return reply.SerializeToString()

    failure = worker_frames_pb2.FrameError(
        code=_Code.FRAME_ERROR_CODE_UNAVAILABLE, message="the engine failed"
    )
    events, error = await _decode_from_one_write(
        lambda stream_id: (
            encode_frame(stream_id, FrameKind.REPLY, tokens(1, "a"))
            + encode_frame(stream_id, FrameKind.REPLY, tokens(2, "b"))
            + encode_frame(stream_id, FrameKind.ERROR, failure.SerializeToString())
        )
    )
    # The tokens reached the caller (a retry continues after them), then the error.
    assert events == [TokenEvent("ab", (1, 2))]
    assert isinstance(error, WorkerCallError)
    assert error.failure is CallFailure.UNAVAILABLE


async def _decode_from_one_write(
    wire: Callable[[int], bytes],
) -> tuple[list[DecodeEvent], WorkerCallError | None]:
    """A decode against a fake worker that answers its call with `wire(stream_id)` in one
    write (all of it is there when the router reads): the events, and the error that
    ended them (None when the stream finished)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(wire(await _read_call(reader)))
        await reader.read()

    config = WorkerProcessConfig.model_validate({"worker_id": "w0", "pool": mock_pool("unified")})
    engine = build_mock_engine(config)  # answers GetInfo; the fake serves the frames
    await engine.start()
    events: list[DecodeEvent] = []
    error: WorkerCallError | None = None
    try:
        async with _fake_worker(serve) as port:
            server, grpc_port = await start_worker_server(engine, "127.0.0.1:0", None, port)
            try:
                async with _connected(f"127.0.0.1:{grpc_port}") as client:
                    try:
                        async for event in client.decode(
                            DecodeCall("r1", [1, 2, 3], 5, True), timeout_s=30
                        ):
                            events.append(event)
                    except WorkerCallError as raised:
                        error = raised
            finally:
                await server.stop(0)
    finally:
        await engine.close()
    return events, error
