"""The router's side of worker frames: a few long-lived connections to one worker.

    FrameChannel ── round robin ──► FrameConnection (K of them, opened when first used)
        call(FrameCall) ──► FrameStream: its REPLY payloads in order, then the end

One reader per connection drains the socket into each stream's own buffer and never
waits for a consumer, so a slow client of one request stalls no other; a stream's
buffer is bounded by its request (max_tokens replies at most), a subscription's (load
reports, KV events) by its consumer, which applies each as it comes. A stream that is
closed before its end sends RESET (the worker aborts the request), a deadline per
call ends it with TIMEOUT, a connection that closes ends its streams with UNAVAILABLE.
The wire format is proto/triskel/v1/worker_frames.proto.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from triskel.common.frames.codec import (
    PREFACE,
    Frame,
    FrameKind,
    FrameParser,
    FrameProtocolError,
)
from triskel.common.frames.writer import FrameWriter
from triskel.common.tls import ReloadingSslContext
from triskel.router.worker_client import CallFailure, WorkerCallError, WorkerClosed
from triskel.v1 import worker_frames_pb2

_Code = worker_frames_pb2.FrameErrorCode
# A few connections, not one: a long prompt being written holds up only its own
# connection's frames, and a connection being replaced leaves the others serving.
NUM_CONNECTIONS = 2
_CONNECT_TIMEOUT_S = 5.0
_MAX_STREAM_ID = 2**32 - 1


@dataclass(frozen=True, slots=True)
class FrameTls:
    """The client TLS of frame connections: the context (the router's worker
    certificate, the workers' CA) and the name workers' certificates hold (None: the
    address dialled, as gRPC checks it)."""

    context: ReloadingSslContext
    server_name: str | None


class FrameStream:
    """One call's replies. `next` returns each REPLY payload in order, then None if the
    worker ENDs the stream; an ERROR, the deadline or a lost connection raise
    WorkerCallError (after the replies before it). Close it when done."""

    __slots__ = ("_connection", "_end", "_replies", "_stream_id", "_timer", "_waiter")

    def __init__(self, connection: FrameConnection, stream_id: int, deadline: float | None) -> None:
        self._connection = connection
        self._stream_id = stream_id
        self._replies: deque[bytes] = deque()
        # How the stream ended, once it has (None: the worker's END): read after the replies.
        self._end: WorkerCallError | _Open | None = _OPEN
        self._waiter: asyncio.Future[None] | None = None
        self._timer = (
            None if deadline is None else asyncio.get_running_loop().call_at(deadline, self._expire)
        )

    async def next(self) -> bytes | None:
        while not self._replies:
            end = self._end
            if not isinstance(end, _Open):
                if end is not None:
                    raise end
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._replies.popleft()

    def take_ready(self) -> list[bytes]:
        """The replies already here, in order, taken at once (a decode sends one per
        token: a reader behind finds many); the end stays for `next`."""
        replies = self._replies
        if not replies:
            return []
        ready = list(replies)
        replies.clear()
        return ready

    def finished(self) -> None:
        """The caller read the call's last reply (a decode's `done`, a prefill's reply)."""
        if self._timer is not None:
            self._timer.cancel()
        self._connection.forget(self._stream_id)

    def close(self) -> None:
        """Ends the stream; one the worker still runs is reset (the worker aborts it)."""
        if self._timer is not None:
            self._timer.cancel()
        if self._connection.forget(self._stream_id):
            self._connection.send(self._stream_id, FrameKind.RESET)

    def reply(self, payload: bytes) -> None:
        if isinstance(self._end, _Open):  # after the end (a deadline passed): dropped
            self._replies.append(payload)
            self._wake()

    def end(self, end: WorkerCallError | None) -> None:
        """The stream ends after the replies already here: None for the worker's END."""
        if isinstance(self._end, _Open):
            self._end = end
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _expire(self) -> None:
        self.end(WorkerCallError(CallFailure.TIMEOUT, "no answer within the call's deadline"))


class _Open:
    """The end of a stream still open (None is taken: the worker's END)."""


_OPEN = _Open()


class FrameConnection(asyncio.Protocol):
    """One connection's streams; its reader hands each frame to its stream."""

    def __init__(self) -> None:
        self._parser = FrameParser()
        self._transport: asyncio.Transport | None = None
        self._writer: FrameWriter | None = None
        self._streams: dict[int, FrameStream] = {}
        self._next_id = 0
        self.is_open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(PREFACE)
        self._writer = FrameWriter(transport)
        self.is_open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream.end(WorkerCallError(CallFailure.UNAVAILABLE, "the worker's connection closed"))

    def data_received(self, data: bytes) -> None:
        try:
            self._handle(self._parser.feed(data))
        except FrameProtocolError as error:
            self._fail(str(error))

    def _handle(self, frames: list[Frame]) -> None:
        streams = self._streams
        for stream_id, kind, payload in frames:
            stream = streams.get(stream_id)
            if stream is None:
                continue  # a stream the caller already closed
            if kind is FrameKind.REPLY:
                stream.reply(payload)
            elif kind is FrameKind.ERROR:
                error = _call_error(payload)  # before the stream leaves: it may not be one
                del streams[stream_id]
                stream.end(error)
            elif kind is FrameKind.END:
                del streams[stream_id]
                stream.end(None)
            else:
                raise FrameProtocolError(f"the worker sent a {kind.name} frame")

    def call(self, call: worker_frames_pb2.FrameCall, deadline: float | None) -> FrameStream:
        stream_id = self._next_id % _MAX_STREAM_ID + 1
        # Ids wrap after 2^32 calls, where a subscription opened days before still runs.
        while stream_id in self._streams:
            stream_id = stream_id % _MAX_STREAM_ID + 1
        self._next_id = stream_id
        stream = FrameStream(self, stream_id, deadline)
        self._streams[stream_id] = stream
        self.send(stream_id, FrameKind.CALL, call.SerializeToString())
        return stream

    def send(self, stream_id: int, kind: FrameKind, payload: bytes = b"") -> None:
        if self._writer is not None:
            self._writer.send(stream_id, kind, payload)

    def forget(self, stream_id: int) -> bool:
        """Drops the stream; True if it was still open here."""
        return self._streams.pop(stream_id, None) is not None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _fail(self, problem: str) -> None:
        if self._transport is not None:
            self._transport.abort()
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream.end(WorkerCallError(CallFailure.UNAVAILABLE, f"frame protocol: {problem}"))


class FrameChannel:
    """`NUM_CONNECTIONS` connections to host:port, each opened when first needed and
    again after it closes."""

    def __init__(self, host: str, port: int, tls: FrameTls | None) -> None:
        self._host, self._port, self._tls = host, port, tls
        self._connections: list[FrameConnection | None] = [None] * NUM_CONNECTIONS
        self._locks = [asyncio.Lock() for _ in range(NUM_CONNECTIONS)]
        self._turn = 0
        self._closed = False

    async def call(self, call: worker_frames_pb2.FrameCall, timeout_s: float | None) -> FrameStream:
        """Sends `call`; its stream ends by `timeout_s` from now at the latest (None:
        a subscription, which runs until closed)."""
        if self._closed:
            raise WorkerClosed()
        deadline = None
        if timeout_s is not None:
            deadline = asyncio.get_running_loop().time() + timeout_s
            call.timeout_ms = max(1, int(timeout_s * 1000))
        slot = self._turn = (self._turn + 1) % NUM_CONNECTIONS
        connection = self._connections[slot]
        if connection is None or not connection.is_open:
            connect_s = (
                _CONNECT_TIMEOUT_S if timeout_s is None else min(timeout_s, _CONNECT_TIMEOUT_S)
            )
            connection = await self._reopen(slot, connect_s)
        return connection.call(call, deadline)

    async def connect(self, timeout_s: float) -> None:
        """Opens the first connection: WorkerCallError when the port cannot be reached."""
        await self._reopen(0, timeout_s)

    async def close(self) -> None:
        self._closed = True
        for connection in self._connections:
            if connection is not None:
                connection.close()

    async def _reopen(self, slot: int, timeout_s: float) -> FrameConnection:
        async with self._locks[slot]:
            connection = self._connections[slot]
            if connection is not None and connection.is_open:
                return connection
            connection = await self._open(timeout_s)
            if self._closed:  # closed while this one was opening: it must not outlive it
                connection.close()
                raise WorkerClosed()
            self._connections[slot] = connection
            return connection

    async def _open(self, timeout_s: float) -> FrameConnection:
        context: ssl.SSLContext | None = None
        server_name: str | None = None
        if self._tls is not None:
            self._tls.context.reload_if_changed()  # a renewed certificate, for new connections
            context = self._tls.context.context
            server_name = self._tls.server_name or self._host
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                _, connection = await loop.create_connection(
                    FrameConnection,
                    self._host,
                    self._port,
                    ssl=context,
                    server_hostname=server_name,
                )
        except (OSError, TimeoutError, ssl.SSLError):
            raise WorkerCallError(
                CallFailure.UNAVAILABLE, "cannot open a frame connection to the worker"
            ) from None
        return connection


def _call_error(payload: bytes) -> WorkerCallError:
    """The worker's FrameError in the router's terms, as the gRPC backend maps statuses;
    FrameProtocolError when it is none."""
    error = worker_frames_pb2.FrameError()
    try:
        error.ParseFromString(payload)
    except DecodeError:
        raise FrameProtocolError("an ERROR frame that is no FrameError") from None
    if error.code == _Code.FRAME_ERROR_CODE_INVALID_ARGUMENT:
        return WorkerCallError(
            CallFailure.INVALID_ARGUMENT, error.message, error.field or "request"
        )
    if error.code == _Code.FRAME_ERROR_CODE_DEADLINE_EXCEEDED:
        return WorkerCallError(CallFailure.TIMEOUT, error.message)
    return WorkerCallError(CallFailure.UNAVAILABLE, error.message)
