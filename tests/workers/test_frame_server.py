"""The worker's frame server, against a real mock worker on port 0: Decode, Prefill and
Cancel as raw frames, errors as ERROR frames, RESET and a closed connection abort the
request, and a connection that breaks the protocol is closed alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from typing import NamedTuple, cast

import grpc
import pytest
import pytest_asyncio

from triskel.common.api import Role, WorkerPoolSpec
from triskel.common.frames.codec import (
    HEADER,
    MAX_PAYLOAD_BYTES,
    PREFACE,
    FrameKind,
    FrameParser,
    encode_frame,
)
from triskel.v1 import worker_frames_pb2, worker_pb2, worker_pb2_grpc
from triskel.workers.api import Engine, KvEventBatch, WorkerDescription
from triskel.workers.frame_server import start_frame_server
from triskel.workers.mock_engine import MockEngine
from triskel.workers.process import WorkerProcessConfig, build_mock_engine

from support.local_workers import LocalWorker, local_worker, mock_pool

# Longest wait for a frame the worker owes us; far above any reply's time here.
REPLY_TIMEOUT_S = 5.0
# How long silence must last to count as "no further frames": decode steps of the slow
# worker are ~8 ms apart, so a stream still running would send several in this time.
QUIET_S = 0.2
# At full modelled speed a decode step takes ~8 ms: 1,000 tokens take ~8 s, far longer
# than any test here, so such a decode is still running when the test acts on it.
SLOW_TIME_SCALE = 1.0
LONG_MAX_TOKENS = 1000
PROMPT = list(range(20))

_Code = worker_frames_pb2.FrameErrorCode


class Frame(NamedTuple):
    """A parsed frame with named parts (the parser returns plain tuples)."""

    stream_id: int
    kind: FrameKind
    payload: bytes


class FrameClient:
    """A raw frame connection: CALL and RESET out, frames in, kept apart by stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = FrameParser()
        self._pending: defaultdict[int, deque[Frame]] = defaultdict(deque)
        self.arrivals: list[int] = []  # the stream id of every frame, in arrival order

    def send(self, stream_id: int, kind: FrameKind, payload: bytes = b"") -> None:
        self._writer.write(encode_frame(stream_id, kind, payload))

    def call(self, stream_id: int, call: worker_frames_pb2.FrameCall) -> None:
        self.send(stream_id, FrameKind.CALL, call.SerializeToString())

    def write_raw(self, data: bytes) -> None:
        self._writer.write(data)

    async def _read_more(self, timeout_s: float) -> None:
        data = await asyncio.wait_for(self._reader.read(65536), timeout_s)
        if not data:
            raise EOFError("the worker closed the connection")
        for parsed in self._parser.feed(data):
            frame = Frame(*parsed)
            self.arrivals.append(frame.stream_id)
            self._pending[frame.stream_id].append(frame)

    async def next_frame(self, stream_id: int, timeout_s: float = REPLY_TIMEOUT_S) -> Frame:
        """The stream's next frame; frames of other streams wait for their turn."""
        async with asyncio.timeout(timeout_s):
            while not self._pending[stream_id]:
                await self._read_more(timeout_s)
        return self._pending[stream_id].popleft()

    def num_pending(self, stream_id: int) -> int:
        return len(self._pending[stream_id])

    async def assert_quiet(self, quiet_s: float = QUIET_S) -> None:
        """No frame of any stream arrives for `quiet_s` (none is already buffered)."""
        with contextlib.suppress(TimeoutError):
            await self._read_more(quiet_s)
        assert not any(self._pending.values()), dict(self._pending)

    async def is_closed_by_peer(self, timeout_s: float = REPLY_TIMEOUT_S) -> bool:
        """Whether the worker closes the connection (EOF or reset) within `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s):
                while await self._reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionResetError:  # closed with data unread: a reset, not a FIN
            pass
        return True

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()


@contextlib.asynccontextmanager
async def frame_connection(
    worker: LocalWorker, preface: bytes = PREFACE
) -> AsyncIterator[FrameClient]:
    assert worker.endpoints.frames is not None, "the worker serves no frames"
    host, port = worker.endpoints.frames.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(preface)
    client = FrameClient(reader, writer)
    try:
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def grpc_stub(worker: LocalWorker) -> AsyncIterator[worker_pb2_grpc.WorkerStub]:
    async with grpc.aio.insecure_channel(worker.endpoints.grpc) as channel:
        yield worker_pb2_grpc.WorkerStub(channel)


@pytest_asyncio.fixture
async def worker() -> AsyncIterator[LocalWorker]:
    # No drain at stop: a test that fails with work in flight should not also wait for it.
    async with local_worker(mock_pool("unified"), "unified-0", drain_timeout_s=0) as running:
        yield running


@pytest_asyncio.fixture
async def slow_worker() -> AsyncIterator[LocalWorker]:
    pool = mock_pool("unified", time_scale=SLOW_TIME_SCALE)
    async with local_worker(pool, "slow-0", drain_timeout_s=0) as running:
        yield running


def decode_call(
    request_id: str, max_tokens: int, seed: int = 7, timeout_ms: int = 0
) -> worker_frames_pb2.FrameCall:
    request = worker_pb2.DecodeRequest(
        request_id=request_id, token_ids=PROMPT, max_tokens=max_tokens, ignore_eos=True, seed=seed
    )
    return worker_frames_pb2.FrameCall(timeout_ms=timeout_ms, decode=request)


def cancel_call(request_id: str) -> worker_frames_pb2.FrameCall:
    return worker_frames_pb2.FrameCall(cancel=worker_pb2.CancelRequest(request_id=request_id))


async def read_decode(client: FrameClient, stream_id: int) -> list[worker_pb2.DecodeResponse]:
    """The stream's replies up to and including `done`; every frame must be a REPLY."""
    responses: list[worker_pb2.DecodeResponse] = []
    while not responses or not responses[-1].HasField("done"):
        frame = await client.next_frame(stream_id)
        assert frame.kind is FrameKind.REPLY, (frame.kind, error_of(frame))
        responses.append(worker_pb2.DecodeResponse.FromString(frame.payload))
    return responses


async def read_error(client: FrameClient, stream_id: int) -> worker_frames_pb2.FrameError:
    frame = await client.next_frame(stream_id)
    assert frame.kind is FrameKind.ERROR, frame
    return worker_frames_pb2.FrameError.FromString(frame.payload)


def error_of(frame: Frame) -> worker_frames_pb2.FrameError | None:
    if frame.kind is not FrameKind.ERROR:
        return None
    return worker_frames_pb2.FrameError.FromString(frame.payload)


def token_ids(responses: list[worker_pb2.DecodeResponse]) -> list[int]:
    return [t for r in responses if r.HasField("tokens") for t in r.tokens.token_ids]


async def load(stub: worker_pb2_grpc.WorkerStub) -> worker_pb2.WorkerStats:
    stats = stub.StreamStats(worker_pb2.StreamStatsRequest(interval_ms=10))
    try:
        snapshot: worker_pb2.WorkerStats = await anext(aiter(stats))
    finally:
        stats.cancel()
    return snapshot


async def wait_until_idle(stub: worker_pb2_grpc.WorkerStub, timeout_s: float = 5.0) -> None:
    """Until the engine runs and queues no request; AssertionError at the deadline."""
    deadline_s = asyncio.get_running_loop().time() + timeout_s
    while (snapshot := await load(stub)).num_running_requests or snapshot.num_waiting_requests:
        assert asyncio.get_running_loop().time() < deadline_s, f"still busy: {snapshot}"
        await asyncio.sleep(0.01)


async def start_long_decode(
    client: FrameClient, stub: worker_pb2_grpc.WorkerStub, stream_id: int, request_id: str
) -> None:
    """Opens a decode that runs for seconds and waits until it is generating."""
    client.call(stream_id, decode_call(request_id, LONG_MAX_TOKENS))
    for _ in range(2):
        frame = await client.next_frame(stream_id)
        assert frame.kind is FrameKind.REPLY
        assert worker_pb2.DecodeResponse.FromString(frame.payload).HasField("tokens")
    assert (await load(stub)).num_running_requests == 1


async def reset_and_settle(client: FrameClient, stream_id: int, barrier_stream_id: int) -> None:
    """RESETs the stream and reads every frame the worker sent for it before the RESET
    took effect: each must be a reply of tokens (neither `done` nor an ERROR)."""
    # The worker handles frames in order: the barrier's reply comes after the RESET took
    # effect, so nothing of the reset stream may follow it. (Not a Cancel of the reset
    # stream's request: that would abort the request itself.)
    client.send(stream_id, FrameKind.RESET)
    client.call(barrier_stream_id, cancel_call("barrier"))
    barrier = await client.next_frame(barrier_stream_id)
    assert barrier.kind is FrameKind.REPLY, error_of(barrier)
    while client.num_pending(stream_id):
        frame = await client.next_frame(stream_id)
        assert frame.kind is FrameKind.REPLY, error_of(frame)
        assert worker_pb2.DecodeResponse.FromString(frame.payload).HasField("tokens")
    await client.assert_quiet()


# -- GetInfo ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_get_info_advertises_the_frame_port(worker: LocalWorker) -> None:
    assert worker.endpoints.frames is not None
    host, port = worker.endpoints.frames.rsplit(":", 1)
    async with grpc_stub(worker) as stub:
        info = await stub.GetInfo(worker_pb2.GetInfoRequest())
    assert host == "127.0.0.1"  # the gRPC address's host
    assert info.frame_port == int(port) != 0
    assert worker.endpoints.grpc != worker.endpoints.frames


@pytest.mark.asyncio
async def test_a_worker_without_frames_advertises_port_0() -> None:
    async with (
        local_worker(mock_pool("unified"), "grpc-only-0", frame_port=None) as worker,
        grpc_stub(worker) as stub,
    ):
        info = await stub.GetInfo(worker_pb2.GetInfoRequest())
        assert worker.endpoints.frames is None
        assert info.frame_port == 0
        assert info.worker_id == "grpc-only-0"  # the reply is a real one, not a default


# -- calls ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_decode_over_frames_streams_the_tokens_grpc_does(worker: LocalWorker) -> None:
    async with frame_connection(worker) as client, grpc_stub(worker) as stub:
        client.call(1, decode_call("frames", 16, seed=11))
        over_frames = await read_decode(client, 1)
        # The same request (same prompt, seed, max_tokens, ignore_eos) over gRPC.
        over_grpc = [r async for r in stub.Decode(decode_call("grpc", 16, seed=11).decode)]
    assert [r.WhichOneof("event") for r in over_frames[:-1]] == ["tokens"] * (len(over_frames) - 1)
    done = over_frames[-1].done
    assert (done.finish_reason, done.num_generated_tokens) == ("length", 16)
    assert len(token_ids(over_frames)) == 16
    # Coalescing may cut the stream differently: the tokens themselves must be the same.
    assert token_ids(over_frames) == token_ids(over_grpc)


@pytest.mark.asyncio
async def test_prefill_over_frames_returns_what_grpc_does_and_cancel_frees_its_kv(
    worker: LocalWorker,
) -> None:
    prompt = list(range(40))
    async with frame_connection(worker) as client, grpc_stub(worker) as stub:
        request = worker_pb2.PrefillRequest(request_id="p1", token_ids=prompt, max_tokens=4)
        client.call(1, worker_frames_pb2.FrameCall(prefill=request))
        frame = await client.next_frame(1)
        assert frame.kind is FrameKind.REPLY, error_of(frame)
        over_frames = worker_pb2.PrefillResponse.FromString(frame.payload)
        over_grpc = await stub.Prefill(
            worker_pb2.PrefillRequest(request_id="p2", token_ids=prompt, max_tokens=4)
        )
        # A unified worker prefills like a prefill worker: more tokens to come, so its
        # KV is held for a peer to pull, described by a handle.
        assert over_frames.HasField("kv") and over_frames.finish_reason == ""
        handle = over_frames.kv
        assert (handle.request_id, handle.worker_id, handle.connector) == ("p1", "unified-0", "tcp")
        assert handle.num_tokens == 40
        # The same prompt, the same first token and KV content as over gRPC.
        assert over_frames.first_token_id == over_grpc.first_token_id
        assert list(handle.block_checksums) == list(over_grpc.kv.block_checksums)
        assert len(handle.block_checksums) == 3  # ceil(40 / 16)
        assert (await load(stub)).num_kv_holds == 2
        # Cancel over frames finds the hold and frees it.
        client.call(2, cancel_call("p1"))
        client.call(3, cancel_call("p2"))
        for stream_id in (2, 3):
            frame = await client.next_frame(stream_id)
            assert frame.kind is FrameKind.REPLY, error_of(frame)
            assert worker_pb2.CancelResponse.FromString(frame.payload).found
        assert (await load(stub)).num_kv_holds == 0


@pytest.mark.asyncio
async def test_a_prefill_that_already_finished_holds_no_kv(worker: LocalWorker) -> None:
    # max_tokens 1: the first token is the last, there is nothing for a decode to pull.
    async with frame_connection(worker) as client:
        request = worker_pb2.PrefillRequest(request_id="p", token_ids=PROMPT, max_tokens=1)
        client.call(1, worker_frames_pb2.FrameCall(prefill=request))
        frame = await client.next_frame(1)
    assert frame.kind is FrameKind.REPLY, error_of(frame)
    response = worker_pb2.PrefillResponse.FromString(frame.payload)
    assert response.finish_reason == "length"
    assert not response.HasField("kv")


@pytest.mark.asyncio
async def test_cancel_of_an_unknown_request_is_not_found(worker: LocalWorker) -> None:
    async with frame_connection(worker) as client:
        client.call(1, cancel_call("nobody"))
        frame = await client.next_frame(1)
    assert frame.kind is FrameKind.REPLY
    assert worker_pb2.CancelResponse.FromString(frame.payload) == worker_pb2.CancelResponse(
        found=False
    )


@pytest.mark.asyncio
async def test_two_streams_interleaved_on_one_connection_each_get_their_own_replies(
    slow_worker: LocalWorker,
) -> None:
    async with frame_connection(slow_worker) as client, grpc_stub(slow_worker) as stub:
        # Stream ids are the client's choice: not 1, 2, nor in order.
        client.call(9, decode_call("a", 6, seed=1))
        client.call(4, decode_call("b", 10, seed=2))
        stream_b = await read_decode(client, 4)
        stream_a = await read_decode(client, 9)
        alone_a = [r async for r in stub.Decode(decode_call("a-alone", 6, seed=1).decode)]
        alone_b = [r async for r in stub.Decode(decode_call("b-alone", 10, seed=2).decode)]
    assert (stream_a[-1].done.num_generated_tokens, stream_b[-1].done.num_generated_tokens) == (
        6,
        10,
    )
    # Each stream carries its own request's tokens, as if it had run alone.
    assert token_ids(stream_a) == token_ids(alone_a)
    assert token_ids(stream_b) == token_ids(alone_b)
    assert token_ids(stream_a) != token_ids(stream_b)[:6]  # seeds 1 and 2 differ
    # They ran side by side: frames of 4 arrived before and after the last frame of 9.
    last_of_a = len(client.arrivals) - 1 - client.arrivals[::-1].index(9)
    assert 4 in client.arrivals[:last_of_a] and 4 in client.arrivals[last_of_a:]
    assert sorted(set(client.arrivals)) == [4, 9]


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param(decode_call("", 4).SerializeToString(), "request_id", id="decode-no-id"),
        pytest.param(
            worker_frames_pb2.FrameCall(
                prefill=worker_pb2.PrefillRequest(request_id="", token_ids=[1], max_tokens=1)
            ).SerializeToString(),
            "request_id",
            id="prefill-no-id",
        ),
        pytest.param(
            worker_frames_pb2.FrameCall(
                prefill=worker_pb2.PrefillRequest(request_id="r", token_ids=[1], max_tokens=0)
            ).SerializeToString(),
            "max_tokens",
            id="prefill-max-tokens-0",
        ),
        # A FrameCall naming no call: with a field set, and empty (an empty payload).
        pytest.param(
            worker_frames_pb2.FrameCall(timeout_ms=1000).SerializeToString(), "call", id="no-call"
        ),
        pytest.param(b"", "call", id="empty-payload"),
        # Not a protobuf at all: refused as the call, not as a broken connection.
        pytest.param(b"not a protobuf", "call", id="not-protobuf"),
    ],
)
@pytest.mark.asyncio
async def test_a_bad_call_gets_one_error_naming_the_field_and_the_connection_lives_on(
    worker: LocalWorker, payload: bytes, field: str
) -> None:
    async with frame_connection(worker) as client:
        client.send(1, FrameKind.CALL, payload)
        error = await read_error(client, 1)
        assert (error.code, error.field) == (_Code.FRAME_ERROR_CODE_INVALID_ARGUMENT, field)
        assert error.message and not error.message.startswith(f"{field}:")
        # The same connection serves the next call.
        client.call(2, decode_call("after", 3))
        assert token_ids(await read_decode(client, 2)) != []
        assert client.num_pending(1) == 0
        await client.assert_quiet(0.05)


@pytest.mark.asyncio
async def test_a_call_the_role_does_not_serve_is_a_failed_precondition() -> None:
    async with (
        local_worker(mock_pool("prefill"), "prefill-0") as prefill_worker,
        frame_connection(prefill_worker) as client,
    ):
        client.call(1, decode_call("r", 4))
        error = await read_error(client, 1)
    assert error.code == _Code.FRAME_ERROR_CODE_FAILED_PRECONDITION
    assert error.message.startswith("Decode is not served by a prefill worker")
    assert error.field == ""


@pytest.mark.asyncio
async def test_a_call_past_its_deadline_ends_with_deadline_exceeded(
    slow_worker: LocalWorker,
) -> None:
    async with frame_connection(slow_worker) as client, grpc_stub(slow_worker) as stub:
        # 100 tokens take ~800 ms on this worker: 50 ms is far too short.
        client.call(1, decode_call("late", 100, timeout_ms=50))
        frame = await client.next_frame(1)
        while frame.kind is FrameKind.REPLY:  # the tokens made within the deadline
            assert not worker_pb2.DecodeResponse.FromString(frame.payload).HasField("done")
            frame = await client.next_frame(1)
        error = error_of(frame)
        assert error is not None
        assert (error.code, error.message) == (
            _Code.FRAME_ERROR_CODE_DEADLINE_EXCEEDED,
            "no answer in 50 ms",
        )
        await client.assert_quiet()
        await wait_until_idle(stub)
        assert not (await stub.Cancel(worker_pb2.CancelRequest(request_id="late"))).found


# -- RESET and closed connections -------------------------------------------------


@pytest.mark.asyncio
async def test_reset_ends_the_stream_silently_and_aborts_the_request(
    slow_worker: LocalWorker,
) -> None:
    async with frame_connection(slow_worker) as client, grpc_stub(slow_worker) as stub:
        await start_long_decode(client, stub, 1, "long")
        await reset_and_settle(client, 1, barrier_stream_id=2)
        await wait_until_idle(stub)
        assert not (await stub.Cancel(worker_pb2.CancelRequest(request_id="long"))).found


@pytest.mark.asyncio
async def test_a_reset_stream_id_may_be_used_again(slow_worker: LocalWorker) -> None:
    async with frame_connection(slow_worker) as client, grpc_stub(slow_worker) as stub:
        await start_long_decode(client, stub, 1, "long")
        await reset_and_settle(client, 1, barrier_stream_id=2)
        await wait_until_idle(stub)
        client.call(1, decode_call("again", 3))
        # Frames of the old stream were all read: these are the new call's.
        again = await read_decode(client, 1)
        assert again[-1].done.num_generated_tokens == 3


@pytest.mark.asyncio
async def test_a_reset_of_an_unknown_stream_is_ignored(worker: LocalWorker) -> None:
    async with frame_connection(worker) as client:
        client.send(5, FrameKind.RESET)
        client.call(1, decode_call("r", 3))
        assert len(token_ids(await read_decode(client, 1))) == 3
        await client.assert_quiet(0.05)


@pytest.mark.asyncio
async def test_a_connection_closed_mid_decode_aborts_the_request(slow_worker: LocalWorker) -> None:
    async with grpc_stub(slow_worker) as stub:
        async with frame_connection(slow_worker) as client:
            await start_long_decode(client, stub, 1, "long")
        await wait_until_idle(stub)
        assert not (await stub.Cancel(worker_pb2.CancelRequest(request_id="long"))).found


# -- protocol abuse ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("preface", "abuse"),
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: worker\r\n\r\n", b"", id="http-request"),
        # Kinds only the worker sends.
        pytest.param(PREFACE, encode_frame(1, FrameKind.REPLY, b""), id="client-reply"),
        pytest.param(PREFACE, encode_frame(1, FrameKind.ERROR, b""), id="client-error"),
        pytest.param(PREFACE, HEADER.pack(0, 1, 7), id="unknown-kind"),
        # Over the limit: refused from the header, no payload needed.
        pytest.param(
            PREFACE, HEADER.pack(MAX_PAYLOAD_BYTES + 1, 1, FrameKind.CALL), id="oversized"
        ),
    ],
)
@pytest.mark.asyncio
async def test_protocol_abuse_closes_that_connection_only(
    worker: LocalWorker, preface: bytes, abuse: bytes
) -> None:
    async with frame_connection(worker) as good:
        good.call(1, decode_call("before", 3))
        await read_decode(good, 1)
        async with frame_connection(worker, preface) as bad:
            bad.write_raw(abuse)
            assert await bad.is_closed_by_peer()
        # The connection opened before still serves calls.
        good.call(2, decode_call("after", 3))
        assert len(token_ids(await read_decode(good, 2))) == 3


@pytest.mark.asyncio
async def test_a_wrong_preface_is_refused_at_its_first_byte(worker: LocalWorker) -> None:
    # The worker need not wait for 8 bytes: "X" alone is not the start of the preface.
    async with frame_connection(worker, b"X") as client:
        assert await client.is_closed_by_peer()


@pytest.mark.asyncio
async def test_a_partial_preface_keeps_the_connection_open(worker: LocalWorker) -> None:
    async with frame_connection(worker, PREFACE[:4]) as client:
        assert not await client.is_closed_by_peer(QUIET_S)
        client.write_raw(PREFACE[4:])
        client.call(1, cancel_call("nobody"))
        assert (await client.next_frame(1)).kind is FrameKind.REPLY


@pytest.mark.asyncio
async def test_opening_a_stream_that_is_open_closes_the_connection_and_its_requests(
    slow_worker: LocalWorker,
) -> None:
    async with frame_connection(slow_worker) as client, grpc_stub(slow_worker) as stub:
        await start_long_decode(client, stub, 1, "long")
        client.call(1, decode_call("twin", 4))
        assert await client.is_closed_by_peer()
        await wait_until_idle(stub)
        assert not (await stub.Cancel(worker_pb2.CancelRequest(request_id="long"))).found


def _engine(time_scale: float) -> MockEngine:
    pool = WorkerPoolSpec.model_validate(
        {
            "role": "unified",
            "model": "m",
            "profile": {"kvCapacityTokens": 8192, "timeScale": time_scale},
        }
    )
    return build_mock_engine(WorkerProcessConfig(worker_id="unified-0", pool=pool))


@pytest.mark.asyncio
async def test_a_stopping_server_refuses_new_calls_and_lets_those_in_flight_end() -> None:
    engine = _engine(SLOW_TIME_SCALE)
    await engine.start()
    server = await start_frame_server(engine, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(PREFACE)
    client = FrameClient(reader, writer)
    try:
        client.call(1, decode_call("in-flight", 30))  # ~8 ms a step: still running below
        assert (await client.next_frame(1)).kind is FrameKind.REPLY
        closing = asyncio.create_task(server.close(grace_s=REPLY_TIMEOUT_S))
        await asyncio.sleep(0)  # close() has begun: the connections know
        client.call(2, decode_call("late", 4))
        error = await read_error(client, 2)
        # UNAVAILABLE: the router retries a refused call on another worker.
        assert error.code == _Code.FRAME_ERROR_CODE_UNAVAILABLE
        assert error.message == "the worker is stopping"
        assert (await read_decode(client, 1))[-1].done.finish_reason == "length"
        await closing
    finally:
        await client.close()
        await engine.close()


@pytest.mark.asyncio
async def test_port_0_on_several_addresses_is_one_port_on_each() -> None:
    engine = _engine(0.0)
    await engine.start()
    # Two loopback addresses, as "localhost" resolves to where it names both.
    server = await start_frame_server(engine, ["127.0.0.1", "::1"], 0)
    try:
        for host in ("127.0.0.1", "::1"):
            reader, writer = await asyncio.open_connection(host, server.port)
            writer.write(PREFACE)
            client = FrameClient(reader, writer)
            try:
                client.call(1, decode_call(f"on-{host}", 2))
                assert len(token_ids(await read_decode(client, 1))) == 2
            finally:
                await client.close()
    finally:
        await server.close(grace_s=0)
        await engine.close()


@pytest.mark.asyncio
async def test_load_reports_stream_until_reset(worker: LocalWorker) -> None:
    async with frame_connection(worker) as client:
        stats = worker_pb2.StreamStatsRequest(interval_ms=10)
        client.call(1, worker_frames_pb2.FrameCall(stats=stats))
        for _ in range(3):
            frame = await client.next_frame(1)
            assert frame.kind is FrameKind.REPLY
            assert worker_pb2.WorkerStats.FromString(frame.payload).worker_id == "unified-0"
        client.send(1, FrameKind.RESET)
        client.call(2, cancel_call("barrier"))  # handled after the RESET
        await client.next_frame(2)
        while client.num_pending(1):  # those already on their way
            assert (await client.next_frame(1)).kind is FrameKind.REPLY
        await client.assert_quiet()


@pytest.mark.asyncio
async def test_kv_events_start_with_a_snapshot(worker: LocalWorker) -> None:
    async with frame_connection(worker) as client:
        events = worker_pb2.StreamKvEventsRequest()
        client.call(1, worker_frames_pb2.FrameCall(kv_events=events))
        snapshot = worker_pb2.KvEventBatch.FromString((await client.next_frame(1)).payload)
        assert snapshot.is_snapshot and snapshot.worker_id == "unified-0"
        client.call(2, decode_call("stores-blocks", 2))
        await read_decode(client, 2)
        live = worker_pb2.KvEventBatch.FromString((await client.next_frame(1)).payload)
        assert not live.is_snapshot
        assert any(event.HasField("stored") for event in live.events)


class _OneBatchEngine:
    """Just enough of an Engine for a KV event subscription the engine then ends (it
    cuts a subscriber that falls far behind)."""

    description = WorkerDescription("w-cut", Role.UNIFIED, "m", "p", 16, 4096, "tcp", 16, "")

    async def kv_events(self) -> AsyncIterator[KvEventBatch]:
        yield KvEventBatch((), is_snapshot=True)


@pytest.mark.asyncio
async def test_a_kv_event_stream_the_engine_ends_ends_with_end() -> None:
    server = await start_frame_server(cast(Engine, _OneBatchEngine()), "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(PREFACE)
    client = FrameClient(reader, writer)
    try:
        events = worker_pb2.StreamKvEventsRequest()
        client.call(1, worker_frames_pb2.FrameCall(kv_events=events))
        assert (await client.next_frame(1)).kind is FrameKind.REPLY
        end = await client.next_frame(1)
        assert (end.kind, end.payload) == (FrameKind.END, b"")
    finally:
        await client.close()
        await server.close(grace_s=0)
