"""The worker's frame server: Decode, Prefill, Cancel, stats and KV events over
long-lived connections.

    client ──preface, CALL(stream, FrameCall)──► one task per stream: calls.py on the
           ◄──REPLY … (ERROR | END)──────────── engine, its replies written in order
           ──RESET(stream)─────────────────────► the stream's task is cancelled: the
                                                  engine aborts the request

The wire format is proto/triskel/v1/worker_frames.proto. It carries what gRPC's call
gives the same methods: a deadline per call, cancellation per call, engine errors as
typed codes with the field at fault, TLS (mTLS) on the same files. A connection that
breaks the protocol is closed; a connection that closes cancels its streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

from google.protobuf.message import DecodeError, Message

from triskel.common.frames.codec import (
    FrameKind,
    FrameParser,
    FrameProtocolError,
)
from triskel.common.frames.writer import FrameWriter
from triskel.v1 import worker_frames_pb2
from triskel.workers import calls
from triskel.workers.api import Engine, EngineFailure, EngineInputError, EngineRoleError

_log = logging.getLogger(__name__)

_Code = worker_frames_pb2.FrameErrorCode
_Call = worker_frames_pb2.FrameCall
# What each call of a FrameCall runs on the engine (calls.py, as the gRPC service does).
_UNARY: dict[str, Callable[[Engine, _Call], Awaitable[Message]]] = {
    "prefill": lambda engine, call: calls.prefill(engine, call.prefill),
    "cancel": lambda engine, call: calls.cancel(engine, call.cancel),
}
_STREAMS: dict[str, Callable[[Engine, _Call], AsyncGenerator[Message, None]]] = {
    "decode": lambda engine, call: calls.decode(engine, call.decode),
    "stats": lambda engine, call: calls.stats(engine, call.stats),
    "kv_events": lambda engine, call: calls.kv_events(engine),
}
_CALLS = (*_STREAMS, *_UNARY)


class FrameServer:
    """The listener and its connections; `close` stops it."""

    def __init__(self, server: asyncio.Server, connections: set[_Connection]) -> None:
        self._server = server
        self._connections = connections
        self.port: int = server.sockets[0].getsockname()[1]

    async def close(self, grace_s: float) -> None:
        """Stops accepting connections and calls (a new call gets UNAVAILABLE: the router
        retries it elsewhere), lets streams in flight end for up to `grace_s`, then
        cancels the rest and closes every connection."""
        self._server.close()
        for connection in self._connections:
            connection.closing = True
        tasks = [task for c in self._connections for task in c.streams.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        for connection in list(self._connections):
            connection.abort()
        await self._server.wait_closed()


async def start_frame_server(
    engine: Engine,
    host: str | Sequence[str],
    port: int,
    ssl_context: ssl.SSLContext | None = None,
) -> FrameServer:
    """Serves `engine`'s frames on host:port (0 picks one), over TLS with `ssl_context`.
    A host with several addresses ("localhost": 127.0.0.1 and ::1) is served on the same
    port on each, as gRPC does: GetInfo advertises one."""
    connections: set[_Connection] = set()
    loop = asyncio.get_running_loop()

    async def listen(on_port: int) -> asyncio.Server:
        return await loop.create_server(
            lambda: _Connection(engine, connections), host, on_port, ssl=ssl_context
        )

    server = await listen(port)
    if port == 0 and len({s.getsockname()[1] for s in server.sockets}) > 1:
        # The kernel picked a port per address: all of them on the first one's instead.
        chosen = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        server = await listen(chosen)
    return FrameServer(server, connections)


class _Connection(asyncio.Protocol):
    def __init__(self, engine: Engine, connections: set[_Connection]) -> None:
        self._engine = engine
        self._connections = connections
        self._parser = FrameParser(expect_preface=True)
        self._transport: asyncio.Transport | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self.streams: dict[int, asyncio.Task[None]] = {}
        self._writer: FrameWriter | None = None
        # The server is stopping: new calls are refused, those in flight go on.
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._writer = FrameWriter(transport)
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._writable.set()
        for task in self.streams.values():
            task.cancel()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._parser.feed(data)
            for stream_id, kind, payload in frames:
                if kind is FrameKind.CALL:
                    self._open(stream_id, payload)
                elif kind is FrameKind.RESET:
                    task = self.streams.get(stream_id)
                    if task is not None:
                        task.cancel()
                else:
                    raise FrameProtocolError(f"a client sent a {kind.name} frame")
        except FrameProtocolError as error:
            _log.warning("closing a frame connection: %s", error)
            self.abort()

    def _open(self, stream_id: int, payload: bytes) -> None:
        if stream_id in self.streams:
            raise FrameProtocolError(f"stream {stream_id} is already open")
        call = worker_frames_pb2.FrameCall()
        try:
            call.ParseFromString(payload)
        except DecodeError:
            message = "is not a FrameCall message"
            self._fail(stream_id, _error(_Code.FRAME_ERROR_CODE_INVALID_ARGUMENT, message, "call"))
            return
        if self.closing:
            self._fail(
                stream_id, _error(_Code.FRAME_ERROR_CODE_UNAVAILABLE, "the worker is stopping")
            )
            return
        task = asyncio.get_running_loop().create_task(self._serve(stream_id, call))
        self.streams[stream_id] = task
        task.add_done_callback(lambda _: self.streams.pop(stream_id, None))

    async def _serve(self, stream_id: int, call: worker_frames_pb2.FrameCall) -> None:
        deadline = asyncio.timeout(call.timeout_ms / 1000 if call.timeout_ms else None)
        try:
            async with deadline:
                await self._run(stream_id, call)
        except (EngineInputError, EngineRoleError, EngineFailure) as error:
            self._fail(stream_id, engine_error(error))
        except Exception as error:
            if isinstance(error, TimeoutError) and deadline.expired():
                message = f"no answer in {call.timeout_ms} ms"
                self._fail(stream_id, _error(_Code.FRAME_ERROR_CODE_DEADLINE_EXCEEDED, message))
                return
            # A bug, not the caller's fault: logged here, never sent as a traceback.
            _log.exception("a frame call failed")
            self._fail(stream_id, _error(_Code.FRAME_ERROR_CODE_UNAVAILABLE, "the worker failed"))

    async def _run(self, stream_id: int, call: worker_frames_pb2.FrameCall) -> None:
        which = call.WhichOneof("call") or ""
        unary = _UNARY.get(which)
        if unary is not None:
            await self._reply(stream_id, await unary(self._engine, call))
            return
        stream = _STREAMS.get(which)
        if stream is None:
            raise EngineInputError("call", f"names no call (one of {', '.join(_CALLS)})")
        async with contextlib.aclosing(stream(self._engine, call)) as replies:
            async for reply in replies:
                await self._reply(stream_id, reply)
        if which != "decode":  # a decode's `done` is its end; these have none of their own
            self._write(stream_id, FrameKind.END, b"")

    async def _reply(self, stream_id: int, message: Message) -> None:
        if not self._writable.is_set():
            await self._writable.wait()
        self._write(stream_id, FrameKind.REPLY, message.SerializeToString())

    def _fail(self, stream_id: int, error: worker_frames_pb2.FrameError) -> None:
        self._write(stream_id, FrameKind.ERROR, error.SerializeToString())

    def _write(self, stream_id: int, kind: FrameKind, payload: bytes) -> None:
        if self._writer is not None:
            self._writer.send(stream_id, kind, payload)


def engine_error(
    error: EngineInputError | EngineRoleError | EngineFailure,
) -> worker_frames_pb2.FrameError:
    """The engine's error as its frame: the same codes the gRPC service aborts with."""
    if isinstance(error, EngineInputError):
        message = str(error).removeprefix(f"{error.field_name}: ")
        return _error(_Code.FRAME_ERROR_CODE_INVALID_ARGUMENT, message, error.field_name)
    if isinstance(error, EngineRoleError):
        return _error(_Code.FRAME_ERROR_CODE_FAILED_PRECONDITION, str(error))
    return _error(_Code.FRAME_ERROR_CODE_UNAVAILABLE, str(error))


def _error(
    code: worker_frames_pb2.FrameErrorCode, message: str, field: str = ""
) -> worker_frames_pb2.FrameError:
    return worker_frames_pb2.FrameError(code=code, field=field, message=message)
