"""Client and server CPU per request of grpc.aio (a call per request, or requests
multiplexed over long-lived bidirectional streams) and of plain length-prefixed frames
over long-lived TCP connections.

    python bench/grpc_call_cost.py [--concurrency 32,256] [--messages 1,16]
        [--streams 1,8] [--seconds 8] [--rounds 2]

Why (issue 21): the router opens one unary-request/server-streaming call per request to
a worker. Would a few long-lived bidi streams per worker, each request tagged with an id,
cost less CPU? Or the router's own frames with no gRPC at all? The three shapes, with
nothing else in them:

- `unary`: one `Generate` call per request; the caller iterates its N messages;
- `mux`: K `Serve` streams on the channel, requests go round them. Per stream one writer
  task owns `write()` and one reader task owns `read()` (grpc.aio allows one of each in
  flight); the reader hands each message to its request's own asyncio.Queue, so the
  caller still consumes a stream;
- `framed`: K TCP connections (`--streams` counts connections here), requests go round
  them; each frame is a 4-byte big-endian length then the message. Plain
  asyncio.Protocol on both ends; the client's `data_received` hands each message to its
  request's own asyncio.Queue, as in `mux`.

A server subprocess of this script (`--serve`) answers at once with N 48-byte messages
(an 8-byte header: request id, messages wanted, is-final; then 40 bytes): gRPC bytes in
and out through generic handlers, no generated code; frames on a second port of the
same process and event loop. `--concurrency` closed-loop callers run `--seconds` after a
warm-up; per run: requests/s, client CPU per request (`time.process_time`, grpc's
threads included) and server CPU per request (its utime + stime from /proc, the idle
gRPC server's included in `framed`). Each round runs every mode once per setting, modes
in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import platform
import statistics
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, cast

import grpc
from cpu_window import measure_window

_SERVICE = "triskel.bench.CallCost"
_GENERATE_PATH = f"/{_SERVICE}/Generate"
_SERVE_PATH = f"/{_SERVICE}/Serve"
_HEADER = struct.Struct("!IHBx")  # request id, messages wanted (requests), is_final (responses)
_PAYLOAD = b"p" * 40
_LENGTH = struct.Struct("!I")  # framed mode: the payload's length before each frame
_MAX_FRAME_BYTES = 1 << 16  # a longer length means a broken stream, not a big message
_WARMUP_S = 2.0


async def _generate(request: bytes, _context: Any) -> AsyncIterator[bytes]:
    _, num_messages, _ = _HEADER.unpack_from(request)
    message = _HEADER.pack(0, 0, 0) + _PAYLOAD  # same size as a mux message
    for _ in range(num_messages):
        yield message


async def _serve(requests: AsyncIterator[bytes], _context: Any) -> AsyncIterator[bytes]:
    # Answered inline, in arrival order: the server does no work, so a task per request
    # (what a real worker needs) would only add the same cost to every mode.
    async for request in requests:
        request_id, num_messages, _ = _HEADER.unpack_from(request)
        for index in range(num_messages):
            yield _HEADER.pack(request_id, 0, index == num_messages - 1) + _PAYLOAD


def pop_frames(buffer: bytearray) -> list[bytes]:
    """Removes the complete frames from the front of `buffer` and returns their payloads;
    a partial frame stays for the next call. ValueError for a length over the limit."""
    payloads: list[bytes] = []
    start, size = 0, len(buffer)
    while size - start >= _LENGTH.size:
        (length,) = _LENGTH.unpack_from(buffer, start)
        if length > _MAX_FRAME_BYTES:
            raise ValueError(f"frame of {length} bytes exceeds {_MAX_FRAME_BYTES}")
        end = start + _LENGTH.size + length
        if end > size:
            break
        payloads.append(bytes(buffer[start + _LENGTH.size : end]))
        start = end
    del buffer[:start]
    return payloads


def frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


class FramedServerProtocol(asyncio.Protocol):
    """Answers each request frame inline with its N response frames, like `_serve`.

    A Protocol rather than asyncio.start_server: streams would add a StreamReader buffer
    copy and a task wakeup per read, overhead the router's own transport need not pay.
    Output is not flow-controlled: the closed-loop client bounds what is in flight.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # asyncio sets TCP_NODELAY

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        for request in pop_frames(self._buffer):
            request_id, num_messages, _ = _HEADER.unpack_from(request)
            for index in range(num_messages):
                # One write per frame, not coalesced: the gRPC modes write per message.
                self._transport.write(
                    frame(_HEADER.pack(request_id, 0, index == num_messages - 1) + _PAYLOAD)
                )


class ServerPorts(NamedTuple):
    grpc: int
    framed: int


async def serve() -> None:
    """Serves until killed; prints `ports GRPC FRAMED` (both bound to ephemeral loopback
    ports) on stdout once listening."""
    handler = grpc.method_handlers_generic_handler(
        _SERVICE,
        {  # no (de)serializers: handlers get and return bytes
            "Generate": grpc.unary_stream_rpc_method_handler(_generate),
            "Serve": grpc.stream_stream_rpc_method_handler(_serve),
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    framed_server = await asyncio.get_running_loop().create_server(
        FramedServerProtocol, "127.0.0.1", 0
    )
    framed_port = framed_server.sockets[0].getsockname()[1]
    await server.start()
    print(f"ports {grpc_port} {framed_port}", flush=True)
    await server.wait_for_termination()


def start_server() -> tuple[subprocess.Popen[str], ServerPorts]:
    """A `--serve` subprocess, listening; the caller kills it."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    ready_line = server.stdout.readline()  # "" if the server died first
    words = ready_line.split()
    if len(words) != 3 or words[0] != "ports":
        server.kill()
        server.wait()
        raise RuntimeError(f"server pid {server.pid} did not start: {ready_line!r}")
    return server, ServerPorts(int(words[1]), int(words[2]))


class StreamEndedError(ConnectionError):
    pass


class PendingRequests:
    """The requests in flight on one multiplexed stream or connection, each with its own
    asyncio.Queue: the hand-off `mux` and `framed` share, so they differ in the
    transport alone. When the transport ends, each pending request is woken with `None`
    and raises StreamEndedError, as do later requests."""

    def __init__(self) -> None:
        self._queues: dict[int, asyncio.Queue[bytes | None]] = {}
        self._request_ids = itertools.count(1)
        self._end_reason: str | None = None

    def open(self) -> tuple[int, asyncio.Queue[bytes | None]]:
        """A new request's id and queue; StreamEndedError once the transport ended."""
        if self._end_reason is not None:
            raise StreamEndedError(self._end_reason)
        request_id = next(self._request_ids) & 0xFFFFFFFF
        responses: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._queues[request_id] = responses
        return request_id, responses

    async def collect(self, request_id: int, responses: asyncio.Queue[bytes | None]) -> int:
        """How many messages came for `request_id`, the last one final. ValueError for a
        message of another request."""
        try:
            num_received = 0
            while True:
                message = await responses.get()
                if message is None:
                    raise StreamEndedError(self._end_reason)
                num_received += 1
                message_id, _, is_final = _HEADER.unpack_from(message)
                if message_id != request_id:
                    raise ValueError(f"request {request_id} got a message of {message_id}")
                if is_final:
                    return num_received
        finally:  # a cancelled request leaves no entry behind
            self._queues.pop(request_id, None)

    def deliver(self, message: bytes) -> None:
        """Hands `message` to its request (dropped when that request was cancelled)."""
        request_id, _, is_final = _HEADER.unpack_from(message)
        responses = self._queues.get(request_id)
        if responses is None:
            return
        responses.put_nowait(message)
        if is_final:
            del self._queues[request_id]

    def end(self, reason: str) -> None:
        """The transport ended: every pending request and every later one fails."""
        self._end_reason = reason
        for responses in self._queues.values():
            responses.put_nowait(None)
        self._queues.clear()


class MuxStream:
    """Requests multiplexed over one bidi stream.

    Contract: only the writer task calls `write()`, only the reader task calls `read()`;
    a request task touches only its own queue (and its own entry in `_pending`, between
    awaits on the one event loop, so no lock).
    """

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._call = channel.stream_stream(_SERVE_PATH)()
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._pending = PendingRequests()
        self._writer = asyncio.create_task(self._write_loop())
        self._reader = asyncio.create_task(self._read_loop())

    async def request(self, num_messages: int) -> int:
        """Sends one request; returns how many messages came back, the last one final."""
        request_id, responses = self._pending.open()
        self._outbox.put_nowait(_HEADER.pack(request_id, num_messages, 0) + _PAYLOAD)
        return await self._pending.collect(request_id, responses)

    async def close(self) -> None:
        self._writer.cancel()
        self._call.cancel()
        await asyncio.gather(self._reader, self._writer, return_exceptions=True)

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._call.write(await self._outbox.get())
        except Exception:
            self._call.cancel()  # the reader then sees the end and fails the pending
            raise

    async def _read_loop(self) -> None:
        reason = "stream ended"
        try:
            while True:
                message = await self._call.read()
                if message is grpc.aio.EOF:
                    return
                self._pending.deliver(message)
        except BaseException as error:  # AioRpcError, or CancelledError on close
            reason = f"stream ended: {error!r}"
            raise
        finally:
            self._pending.end(reason)


class FramedConnection(asyncio.Protocol):
    """Requests multiplexed over one TCP connection of length-prefixed frames.

    `data_received` parses the frames and hands each message to its request
    (`PendingRequests`, as MuxStream's reader does), so the caller still consumes a
    stream.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._pending = PendingRequests()
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, port: int) -> FramedConnection:
        _, connection = await asyncio.get_running_loop().create_connection(cls, "127.0.0.1", port)
        return connection

    async def request(self, num_messages: int) -> int:
        """Sends one request; returns how many messages came back, the last one final.
        ValueError for a message of another request."""
        if self._transport is None:
            raise StreamEndedError("not connected")
        request_id, responses = self._pending.open()
        self._transport.write(frame(_HEADER.pack(request_id, num_messages, 0) + _PAYLOAD))
        return await self._pending.collect(request_id, responses)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            await self._closed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # asyncio sets TCP_NODELAY

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for message in pop_frames(self._buffer):  # ValueError: asyncio drops the connection
            self._pending.deliver(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self._pending.end(f"connection ended: {exc!r}")
        if not self._closed.done():
            self._closed.set_result(None)


Mode = Literal["unary", "mux", "framed"]


@dataclass(slots=True, frozen=True)
class RunSpec:
    mode: Mode
    num_streams: int | None  # mux streams or framed connections; None for unary
    concurrency: int
    num_messages: int


@dataclass(slots=True, frozen=True)
class RunResult:
    requests_per_s: float
    client_us_per_request: float
    server_us_per_request: float


@dataclass(slots=True)
class _Load:
    is_measuring: bool = False
    is_stopping: bool = False
    num_completed: int = 0


async def _open_sender(
    spec: RunSpec, ports: ServerPorts, resources: contextlib.AsyncExitStack
) -> Callable[[], Awaitable[int]]:
    """One request of `spec` per call, on a fresh channel or fresh connections that
    `resources` closes; each call returns how many messages came back."""
    if spec.mode == "framed":
        assert spec.num_streams is not None
        connections: list[FramedConnection] = []
        for _ in range(spec.num_streams):
            connections.append(await FramedConnection.open(ports.framed))
            resources.push_async_callback(connections[-1].close)
        next_connection = itertools.cycle(connections)
        return lambda: next(next_connection).request(spec.num_messages)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{ports.grpc}")
    resources.push_async_callback(channel.close)  # after the streams: callbacks run LIFO
    await channel.channel_ready()
    if spec.mode == "unary":
        generate = channel.unary_stream(_GENERATE_PATH)
        request = _HEADER.pack(0, spec.num_messages, 0) + _PAYLOAD

        async def send_one() -> int:
            return sum([1 async for _ in generate(request)])

        return send_one
    assert spec.num_streams is not None
    streams: list[MuxStream] = []
    for _ in range(spec.num_streams):
        streams.append(MuxStream(channel))
        resources.push_async_callback(streams[-1].close)
    next_stream = itertools.cycle(streams)
    return lambda: next(next_stream).request(spec.num_messages)


async def run_once(
    spec: RunSpec,
    ports: ServerPorts,
    server_pid: int,
    seconds: float,
    warmup_s: float = _WARMUP_S,
) -> RunResult:
    """`spec.concurrency` closed-loop callers on a fresh channel or fresh connections;
    measured after warm-up. A caller's error (a short or foreign reply, a lost stream)
    ends the run with it."""
    async with contextlib.AsyncExitStack() as resources:
        send_one = await _open_sender(spec, ports, resources)
        return await _drive(spec, send_one, server_pid, seconds, warmup_s)


async def _drive(
    spec: RunSpec,
    send_one: Callable[[], Awaitable[int]],
    server_pid: int,
    seconds: float,
    warmup_s: float,
) -> RunResult:
    load = _Load()

    async def caller() -> None:
        while not load.is_stopping:
            num_received = await send_one()
            if num_received != spec.num_messages:
                raise AssertionError(f"{num_received} messages, not {spec.num_messages}")
            if load.is_measuring:
                load.num_completed += 1

    callers = [caller() for _ in range(spec.concurrency)]
    window = await measure_window(callers, load, server_pid, warmup_s, seconds)
    num_completed = max(load.num_completed, 1)
    return RunResult(
        requests_per_s=load.num_completed / window.elapsed_s,
        client_us_per_request=window.client_cpu_s / num_completed * 1e6,
        server_us_per_request=window.server_cpu_s / num_completed * 1e6,
    )


def int_list(text: str) -> list[int]:
    """`1,8` -> [1, 8]; argparse names the option and value on a ValueError."""
    values = [int(part) for part in text.split(",")]
    if min(values) < 1:
        raise ValueError(text)
    return values


def build_specs(args: argparse.Namespace) -> list[RunSpec]:
    """One round's runs: per (messages, concurrency) every mode in turn."""
    modes: list[tuple[Mode, int | None]] = [
        ("unary", None),
        *[("mux", num_streams) for num_streams in args.streams],
        *[("framed", num_streams) for num_streams in args.streams],
    ]
    return [
        RunSpec(mode, num_streams, concurrency, messages)
        for messages in args.messages
        for concurrency in args.concurrency
        for mode, num_streams in modes
    ]


def format_table(results: dict[RunSpec, list[RunResult]], args: argparse.Namespace) -> str:
    lines = [
        f"grpcio {grpc.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; {args.rounds} round(s) of {args.seconds:g} s per run "
        f"after {_WARMUP_S:g} s warm-up",
        "",
        "| mode | streams | concurrency | messages | req/s median (range) "
        "| client µs/req median | server µs/req median |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec, runs in results.items():
        rates = [run.requests_per_s for run in runs]
        client_us = statistics.median(run.client_us_per_request for run in runs)
        server_us = statistics.median(run.server_us_per_request for run in runs)
        lines.append(
            f"| {spec.mode} | {spec.num_streams or '-'} | {spec.concurrency} "
            f"| {spec.num_messages} | {statistics.median(rates):.0f} "
            f"({min(rates):.0f}–{max(rates):.0f}) | {client_us:.0f} | {server_us:.0f} |"
        )
    return "\n".join(lines)


async def run_all(args: argparse.Namespace, ports: ServerPorts, server_pid: int) -> str:
    specs = build_specs(args)
    results: dict[RunSpec, list[RunResult]] = {spec: [] for spec in specs}
    for round_index in range(args.rounds):
        for spec in specs:
            result = await run_once(spec, ports, server_pid, args.seconds)
            results[spec].append(result)
            print(f"round {round_index + 1}: {spec} {result}", file=sys.stderr, flush=True)
    return format_table(results, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int_list, default=[32, 256])
    parser.add_argument("--messages", type=int_list, default=[1, 16])
    parser.add_argument(
        "--streams", type=int_list, default=[1, 8], help="mux streams / framed connections"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0:
        parser.error(f"--rounds ({args.rounds}) and --seconds ({args.seconds}) must be > 0")
    if args.serve:
        asyncio.run(serve())
        return 0
    server, ports = start_server()
    try:
        print(asyncio.run(run_all(args, ports, server.pid)))
    finally:  # it holds nothing worth a graceful stop
        server.kill()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
