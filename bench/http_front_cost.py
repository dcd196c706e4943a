"""Server CPU per request and requests/s of an OpenAI-style SSE endpoint served by
aiohttp and by granian (a Rust HTTP server, hyper on tokio) inside the asyncio loop.

    python bench/http_front_cost.py [--modes aiohttp,granian-rsgi,granian-asgi]
        [--concurrency 32,256] [--chunks 1,16] [--seconds 8] [--rounds 2]

Why (issue 21): would a faster HTTP front than the router's aiohttp one save CPU? The
router runs grpc.aio servers and clients on its asyncio loop, so its HTTP server must
serve from that same loop. granian (measured with 2.8.9) has an embedded mode that does:
`granian.server.embed.Server(app, address, port, interface=...)` and `await
server.serve()` on the running loop; `server.stop()` ends it. Its Rust side (hyper, on a
tokio runtime of `runtime_threads` threads, 1 here) accepts, parses and writes; each
request is handed to the loop (`call_soon_threadsafe`) and runs there as an asyncio task.
The embedded server does not report its port: with port 0 each worker binds its own, so
the server process here finds its listening socket among its file descriptors.

Every mode serves the same endpoint, the router's shape with nothing else in it: read
the whole body, parse it with orjson (`max_tokens`: chunks to send), then stream that
many `data: {...}` events (~100-byte orjson payloads, one write each) and `data: [DONE]`:

- `aiohttp`: `aiohttp.web` on AppRunner + TCPSite, a `web.StreamResponse` whose headers
  leave with the first chunk (`_send_headers_immediately = False`, as router/http_api.py);
- `granian-rsgi`: granian's own interface (`protocol()` for the body,
  `response_stream()` then `send_bytes()` per chunk); hyper sends the headers itself;
- `granian-asgi`: the same through granian's ASGI interface (no lifespan), which any
  ASGI app could use.

Each mode's server is a subprocess of this script (`--serve MODE --port 0`, printing
`port N` once listening), all started first and kept for the run. This process is the
client: `--concurrency` closed-loop tasks on one aiohttp session (connector limit = the
concurrency, so connections are kept alive and reused) POST a ~300-byte JSON body with
`"stream": true` and read the whole SSE reply, checked (status 200, text/event-stream,
the chunks asked for, ends with [DONE]); a reply that fails is counted, never dropped.
Per run, after a warm-up: requests/s, the server's CPU per request (utime + stime of all
its threads from /proc, granian's Rust threads included), this client's CPU per request
(`time.process_time`, informational) and the p50/p99 time from sending a request to
receiving its first SSE bytes. Each round runs every mode once per setting, in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import socket
import stat
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from cpu_window import measure_window

_PATH = "/v1/completions"
_HOST = "127.0.0.1"
_MODEL = "bench-model"
_SSE_DONE = b"data: [DONE]\n\n"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_GRANIAN_INTERFACES = {"granian-rsgi": "rsgi", "granian-asgi": "asginl"}  # asginl: no lifespan
_ALL_MODES = ("aiohttp", *_GRANIAN_INTERFACES)
# Both servers default to a 128 backlog (granian embedded: also at most 128 requests in
# Python at once); 256 connections opened together would overflow it.
_BACKLOG = 1024
_WARMUP_S = 2.0
_REQUEST_TIMEOUT_S = 30.0
_LISTEN_TIMEOUT_S = 10.0


def granian_version() -> str | None:
    """The installed granian's version, None if it is not installed."""
    if importlib.util.find_spec("granian") is None:
        return None
    return importlib.metadata.version("granian")


def available_modes() -> list[str]:
    return list(_ALL_MODES) if granian_version() is not None else ["aiohttp"]


# --- the endpoint, shared by every mode ---


def request_body(num_chunks: int) -> bytes:
    """A ~300-byte completion request asking for `num_chunks` chunks."""
    return orjson.dumps(
        {
            "model": _MODEL,
            "prompt": "Summarise the following text in one sentence. " + "lorem ipsum " * 16,
            "max_tokens": num_chunks,
            "temperature": 0.0,
            "stream": True,
        }
    )


def parse_request(body: bytes) -> tuple[str, int]:
    """The model and the number of chunks asked for; ValueError if the body is not one."""
    request = orjson.loads(body)  # orjson.JSONDecodeError is a ValueError
    if not isinstance(request, dict) or request.get("stream") is not True:
        raise ValueError("not a streaming completion request")
    model, num_chunks = request.get("model"), request.get("max_tokens")
    if not isinstance(model, str) or not isinstance(num_chunks, int) or num_chunks < 1:
        raise ValueError("model or max_tokens missing")
    return model, num_chunks


def sse_chunk(model: str, index: int) -> bytes:
    """One `data: {...}` event; its JSON is ~100 bytes, as a one-token chunk is."""
    payload = {
        "id": "cmpl-b",
        "model": model,
        "choices": [{"index": 0, "text": f" t{index}", "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class _SseResponse(web.StreamResponse):
    # Headers leave with the first chunk, as the router's (router/http_api.py).
    _send_headers_immediately = False


async def _aiohttp_handler(request: web.Request) -> web.StreamResponse:
    try:
        model, num_chunks = parse_request(await request.read())
    except ValueError as error:
        return web.Response(status=400, text=str(error))
    response = _SseResponse(headers=_SSE_HEADERS)
    await response.prepare(request)
    for index in range(num_chunks):
        await response.write(sse_chunk(model, index))
    await response.write_eof(_SSE_DONE)
    return response


async def _rsgi_app(scope: Any, protocol: Any) -> None:
    if scope.proto != "http":
        return
    try:
        model, num_chunks = parse_request(await protocol())
    except ValueError as error:
        protocol.response_bytes(400, [], str(error).encode())
        return
    transport = protocol.response_stream(200, list(_SSE_HEADERS.items()))
    for index in range(num_chunks):
        await transport.send_bytes(sse_chunk(model, index))
    await transport.send_bytes(_SSE_DONE)  # the stream ends when the app returns


async def _asgi_app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    try:
        model, num_chunks = parse_request(b"".join(parts))
    except ValueError as error:
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": str(error).encode()})
        return
    headers = [(name.lower().encode(), value.encode()) for name, value in _SSE_HEADERS.items()]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for index in range(num_chunks):
        chunk = sse_chunk(model, index)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": _SSE_DONE, "more_body": False})


# --- the servers (`--serve MODE`) ---


async def _serve_aiohttp(port: int) -> None:
    app = web.Application()
    app.router.add_post(_PATH, _aiohttp_handler)
    # As common/http_listener.py starts the router's front, minus its connection cap.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, _HOST, port, backlog=_BACKLOG).start()
    print(f"port {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


def listening_tcp_ports() -> set[int]:
    """The ports this process's IPv4 TCP sockets listen on."""
    ports: set[int] = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if not stat.S_ISSOCK(os.stat(f"/proc/self/fd/{name}").st_mode):
                continue
            duplicate = os.dup(int(name))
        except OSError:  # closed since the listing (the listing's own fd, too)
            continue
        with socket.socket(fileno=duplicate) as sock:  # closes the duplicate only
            if (
                sock.family == socket.AF_INET
                and sock.type == socket.SOCK_STREAM
                and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            ):
                ports.add(sock.getsockname()[1])
    return ports


async def _serve_granian(mode: str, port: int) -> None:
    # Imported by name, untyped: granian is no dependency of the project, so type
    # checking must not need it.
    embed = importlib.import_module("granian.server.embed")
    constants = importlib.import_module("granian.constants")
    interface = constants.Interfaces(_GRANIAN_INTERFACES[mode])
    server = embed.Server(
        _rsgi_app if interface == constants.Interfaces.RSGI else _asgi_app,
        address=_HOST,
        port=port,
        interface=interface,
        http=constants.HTTPModes.http1,  # what the clients speak, as aiohttp
        backlog=_BACKLOG,
        log_enabled=False,
    )
    ports_before = listening_tcp_ports()
    serving = asyncio.create_task(server.serve())
    deadline_s = time.monotonic() + _LISTEN_TIMEOUT_S
    while not (new_ports := listening_tcp_ports() - ports_before):
        if serving.done():
            serving.result()  # raises why it stopped
            raise RuntimeError("granian stopped before listening")
        if time.monotonic() > deadline_s:
            raise RuntimeError(f"granian not listening after {_LISTEN_TIMEOUT_S:g} s")
        await asyncio.sleep(0.01)
    print(f"port {min(new_ports)}", flush=True)
    await serving


def serve(mode: str, port: int) -> None:
    """Serves `mode` until killed; prints `port N` on stdout once listening."""
    asyncio.run(_serve_aiohttp(port) if mode == "aiohttp" else _serve_granian(mode, port))


def start_server(mode: str) -> tuple[subprocess.Popen[str], int]:
    """A `--serve mode` subprocess of this script and its port, once it listens."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    ready_line = server.stdout.readline()  # "" if the server died first
    if not ready_line.startswith("port "):
        server.kill()
        server.wait()
        raise RuntimeError(f"{mode} server pid {server.pid} did not start: {ready_line!r}")
    return server, int(ready_line.split()[1])


# --- the client ---


def verify_response(status: int, content_type: str, body: bytes, num_chunks: int) -> str | None:
    """Why the reply is not a complete SSE stream of `num_chunks` chunks, None if it is."""
    if status != 200:
        return f"status {status}"
    if content_type != "text/event-stream":
        return f"content type {content_type!r}"
    if not body.endswith(b"\n\n" + _SSE_DONE) and body != _SSE_DONE:
        return f"does not end with data: [DONE]: ...{body[-40:]!r}"
    events = body[: -len(_SSE_DONE)].split(b"\n\n")[:-1]  # the split leaves a last b""
    if len(events) != num_chunks:
        return f"{len(events)} chunks, not {num_chunks}"
    for event in events:  # JSON left unparsed: the client's CPU is the bench's too
        if not (event.startswith(b"data: {") and event.endswith(b"}")):
            return f"not a JSON data event: {event[:40]!r}"
    return None


@dataclass(slots=True, frozen=True)
class RunSpec:
    mode: str
    concurrency: int
    num_chunks: int


@dataclass(slots=True, frozen=True)
class RunResult:
    requests_per_s: float
    server_us_per_request: float
    client_us_per_request: float
    first_chunk_p50_ms: float
    first_chunk_p99_ms: float
    num_failed: int
    first_error: str | None


@dataclass(slots=True)
class _Load:
    is_measuring: bool = False
    is_stopping: bool = False
    num_completed: int = 0
    num_failed: int = 0  # in the warm-up and drain too: a failure is one wherever it is
    first_error: str | None = None
    first_chunk_s: list[float] = field(default_factory=list)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def _request_once(
    session: aiohttp.ClientSession, url: str, body: bytes, num_chunks: int
) -> tuple[float, str | None]:
    """Seconds to the first body bytes, and why the reply failed (None: it did not)."""
    started_s = time.perf_counter()
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as reply:
        first = await reply.content.readany()
        first_chunk_s = time.perf_counter() - started_s
        rest = await reply.content.read()
        return first_chunk_s, verify_response(
            reply.status, reply.content_type, first + rest, num_chunks
        )


async def run_once(
    spec: RunSpec, port: int, server_pid: int, seconds: float, warmup_s: float = _WARMUP_S
) -> RunResult:
    """`spec.concurrency` closed-loop clients on a fresh session; measured after warm-up."""
    url = f"http://{_HOST}:{port}{_PATH}"
    body = request_body(spec.num_chunks)
    load = _Load()

    async def client(session: aiohttp.ClientSession) -> None:
        while not load.is_stopping:
            try:
                first_chunk_s, error = await _request_once(session, url, body, spec.num_chunks)
            except (aiohttp.ClientError, TimeoutError) as exception:
                first_chunk_s, error = 0.0, repr(exception)
            if error is not None:
                load.num_failed += 1
                load.first_error = load.first_error or error
                await asyncio.sleep(0.01)  # a dead server must not spin the client
            elif load.is_measuring:
                load.num_completed += 1
                load.first_chunk_s.append(first_chunk_s)

    connector = aiohttp.TCPConnector(limit=spec.concurrency)
    timeout = aiohttp.ClientTimeout(total=_REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        callers = [client(session) for _ in range(spec.concurrency)]
        window = await measure_window(callers, load, server_pid, warmup_s, seconds)
    num_completed = max(load.num_completed, 1)
    return RunResult(
        requests_per_s=load.num_completed / window.elapsed_s,
        server_us_per_request=window.server_cpu_s / num_completed * 1e6,
        client_us_per_request=window.client_cpu_s / num_completed * 1e6,
        first_chunk_p50_ms=percentile(load.first_chunk_s, 0.50) * 1e3,
        first_chunk_p99_ms=percentile(load.first_chunk_s, 0.99) * 1e3,
        num_failed=load.num_failed,
        first_error=load.first_error,
    )


# --- the runs and the report ---


def int_list(text: str) -> list[int]:
    """`1,8` -> [1, 8]; argparse names the option and value on a ValueError."""
    values = [int(part) for part in text.split(",")]
    if min(values) < 1:
        raise ValueError(text)
    return values


def mode_list(text: str) -> list[str]:
    modes = text.split(",")
    if not modes or any(mode not in _ALL_MODES for mode in modes):
        raise ValueError(text)
    return modes


def build_specs(args: argparse.Namespace) -> list[RunSpec]:
    """One round's runs: per (chunks, concurrency) every mode in turn."""
    return [
        RunSpec(mode, concurrency, num_chunks)
        for num_chunks in args.chunks
        for concurrency in args.concurrency
        for mode in args.modes
    ]


def format_table(results: dict[RunSpec, list[RunResult]], args: argparse.Namespace) -> str:
    granian = granian_version()
    lines = [
        f"{datetime.date.today().isoformat()}: Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, granian {granian or 'not installed'} (embedded), "
        f"{platform.machine()}, {os.cpu_count()} CPUs; {args.rounds} round(s) of "
        f"{args.seconds:g} s per run after {_WARMUP_S:g} s warm-up; medians over rounds",
        "",
        "| mode | concurrency | chunks | req/s median (range) | server µs/req "
        "| client µs/req | first chunk p50 ms | p99 ms | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    errors: list[str] = []
    for spec, runs in results.items():
        rates = [run.requests_per_s for run in runs]
        num_failed = sum(run.num_failed for run in runs)
        errors += [f"{spec.mode}: {run.first_error}" for run in runs if run.first_error][:1]
        lines.append(
            f"| {spec.mode} | {spec.concurrency} | {spec.num_chunks} "
            f"| {statistics.median(rates):.0f} ({min(rates):.0f}–{max(rates):.0f}) "
            f"| {statistics.median(run.server_us_per_request for run in runs):.0f} "
            f"| {statistics.median(run.client_us_per_request for run in runs):.0f} "
            f"| {statistics.median(run.first_chunk_p50_ms for run in runs):.2f} "
            f"| {statistics.median(run.first_chunk_p99_ms for run in runs):.2f} "
            f"| {f'**{num_failed} FAILED**' if num_failed else 0} |"
        )
    if errors:
        lines += ["", "Failures (first error of each failing setting):", *errors]
    return "\n".join(lines)


async def run_all(args: argparse.Namespace, servers: dict[str, tuple[int, int]]) -> str:
    """`servers`: per mode its (port, pid)."""
    specs = build_specs(args)
    results: dict[RunSpec, list[RunResult]] = {spec: [] for spec in specs}
    for round_index in range(args.rounds):
        for spec in specs:
            port, pid = servers[spec.mode]
            result = await run_once(spec, port, pid, args.seconds)
            results[spec].append(result)
            print(f"round {round_index + 1}: {spec} {result}", file=sys.stderr, flush=True)
    return format_table(results, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--modes",
        type=mode_list,
        default=None,
        help="default: all installed of " + ",".join(_ALL_MODES),
    )
    parser.add_argument("--concurrency", type=int_list, default=[32, 256])
    parser.add_argument("--chunks", type=int_list, default=[1, 16], help="SSE chunks per reply")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", choices=_ALL_MODES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.port)
        return 0
    if args.rounds < 1 or args.seconds <= 0:
        parser.error(f"--rounds ({args.rounds}) and --seconds ({args.seconds}) must be > 0")
    args.modes = args.modes or available_modes()
    if missing := [mode for mode in args.modes if mode not in available_modes()]:
        parser.error(f"{','.join(missing)}: granian is not installed (pip install granian)")
    processes: list[subprocess.Popen[str]] = []
    try:
        servers: dict[str, tuple[int, int]] = {}
        for mode in args.modes:
            process, port = start_server(mode)
            processes.append(process)
            servers[mode] = (port, process.pid)
        table = asyncio.run(run_all(args, servers))
    finally:  # they hold nothing worth a graceful stop
        for process in processes:
            process.kill()
            process.wait()
    print(table)
    return 1 if "FAILED" in table else 0


if __name__ == "__main__":
    sys.exit(main())
