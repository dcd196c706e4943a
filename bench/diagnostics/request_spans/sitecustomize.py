"""Where a routed request's time to first token goes: timestamps at each hop (issue 21).

A diagnostic, not part of Triskel: on PYTHONPATH, every Python process of a run imports
it; in a router process (`triskel.cli.main router`) and in mock worker processes
(`... worker`) it wraps a few internal functions to note, per request, the monotonic
time (one clock for every process on the machine) at each hop, and appends them as JSON
lines under $REQUEST_SPANS_DIR (default /tmp/request-spans):

    router: arrival (the HTTP handler starts), call (the frame call is made), reply (its
            first reply arrives), write (the first bytes go to the client)
    worker: open (the frame call is read), first (its first tokens are sent); and for
            its own HTTP API (the direct path) start and first, the same two points

    PYTHONPATH=bench/diagnostics/request_spans python bench/compare_routers.py \\
        --routers triskel --shape unified --triskel-worker-apis triskel --limit 1 \\
        --probe-requests 200 --probe-rates 200
    python bench/diagnostics/request_spans/report.py

With REQUEST_SPANS_STEPS=1 the router also notes the steps of its path to the call
(building the request's context, tokenizing, the pick and each of its plugins, recording
it, building the call), which `report.py` then lists too.

It patches private functions (router/http_api.py, router/backends/frame_channel.py,
workers/frame_server.py, workers/openai_http/generation.py): when they change, it
says so on stderr and records nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

_DIR = os.environ.get("REQUEST_SPANS_DIR", "/tmp/request-spans")


def _sink(role: str) -> Any:
    os.makedirs(_DIR, exist_ok=True)
    return open(os.path.join(_DIR, f"{role}-{os.getpid()}.jsonl"), "a", buffering=1)


def _replace(owner: object, name: str, wrapper: object) -> None:
    setattr(owner, name, wrapper)  # a wrapper of another signature than mypy knows


def _router() -> None:
    import triskel.router.backends.frame_channel as frames
    import triskel.router.http_api as http

    out, now = _sink("router"), time.monotonic
    spans: dict[asyncio.Task[Any] | None, dict[str, Any]] = {}
    stream_task: dict[int, asyncio.Task[Any] | None] = {}
    serve, call, reply, send = (
        http._HttpFront._serve,
        frames.FrameConnection.call,
        frames.FrameStream.reply,
        http._send,
    )

    async def timed_serve(self: Any, request: Any, parse: Any, is_chat: bool) -> Any:
        task = asyncio.current_task()
        spans[task] = {"arrival": now()}
        try:
            return await serve(self, request, parse, is_chat)
        finally:
            span = spans.pop(task, None)
            if span is not None and "id" in span:
                out.write(json.dumps(span) + "\n")

    def timed_call(self: Any, frame_call: Any, deadline: Any) -> Any:
        stream = call(self, frame_call, deadline)
        span = spans.get(asyncio.current_task())
        if span is not None and "call" not in span and frame_call.WhichOneof("call") == "decode":
            span["call"], span["id"] = now(), frame_call.decode.request_id
            stream_task[id(stream)] = asyncio.current_task()
        return stream

    def timed_reply(self: Any, payload: Any) -> Any:
        span = spans.get(stream_task.pop(id(self), None))
        if span is not None:
            span["reply"] = now()
        return reply(self, payload)

    async def timed_send(operation: Any) -> Any:
        span = spans.get(asyncio.current_task())
        if span is not None and "write" not in span:
            span["write"] = now()
        return await send(operation)

    _replace(http._HttpFront, "_serve", timed_serve)
    _replace(frames.FrameConnection, "call", timed_call)
    _replace(frames.FrameStream, "reply", timed_reply)
    _replace(http, "_send", timed_send)
    if os.environ.get("REQUEST_SPANS_STEPS"):
        _router_steps(spans, now)


def _router_steps(spans: dict[asyncio.Task[Any] | None, dict[str, Any]], now: Any) -> None:
    """The steps between arrival and the worker call (REQUEST_SPANS_STEPS=1): when each
    starts and ends, and the pick's own per-plugin times. Each wrapper costs ~1 µs."""
    import triskel.router.backends.grpc_worker as backend
    import triskel.router.dispatcher as dispatcher
    import triskel.router.orchestrator as orchestrator
    import triskel.router.scheduling.scheduler as scheduler
    import triskel.router.stages.tokenize as tokenize

    def note(name: str) -> None:
        span = spans.get(asyncio.current_task())
        if span is not None and name not in span:
            span[name] = now()

    def timed(owner: object, name: str, step: str, is_async: bool) -> None:
        original = getattr(owner, name)

        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            note(f"{step}:start")
            try:
                return await original(*args, **kwargs)
            finally:
                note(f"{step}:end")

        def timed_sync(*args: Any, **kwargs: Any) -> Any:
            note(f"{step}:start")
            try:
                return original(*args, **kwargs)
            finally:
                note(f"{step}:end")

        _replace(owner, name, timed_async if is_async else timed_sync)

    timed(orchestrator, "worker_request", "request context", False)
    timed(tokenize.TokenizeStage, "run", "tokenize", True)
    timed(dispatcher.Dispatcher, "pick", "dispatcher pick", True)
    timed(dispatcher.Dispatcher, "sent", "record the pick", False)
    timed(backend, "_decode_request", "build the call", False)
    choose = scheduler.Scheduler.choose

    def timed_choose(self: Any, request: Any, candidates: Any) -> Any:
        note("choose:start")
        decision = choose(self, request, candidates)
        note("choose:end")
        span = spans.get(asyncio.current_task())
        if span is not None and "plugins" not in span:
            span["plugins"] = dict(decision.plugin_seconds)
        return decision

    _replace(scheduler.Scheduler, "choose", timed_choose)


def _worker() -> None:
    import triskel.workers.frame_server as frames
    import triskel.workers.openai_http.generation as http
    from triskel.v1 import worker_frames_pb2

    out, now = _sink("worker"), time.monotonic
    opened: dict[tuple[int, int], dict[str, Any]] = {}
    started: dict[asyncio.Task[Any] | None, float] = {}
    open_call, reply = frames._Connection._open, frames._Connection._reply
    serve, send = http.GenerationHandlers._serve, http._send

    def timed_open(self: Any, stream_id: int, payload: bytes) -> Any:
        frame_call = worker_frames_pb2.FrameCall.FromString(payload)
        if frame_call.WhichOneof("call") == "decode":
            opened[(id(self), stream_id)] = {"open": now(), "id": frame_call.decode.request_id}
        return open_call(self, stream_id, payload)

    async def timed_reply(self: Any, stream_id: int, message: Any) -> Any:
        span = opened.get((id(self), stream_id))
        if span is not None and message.WhichOneof("event") == "tokens":
            del opened[(id(self), stream_id)]
            span["first"] = now()
            out.write(json.dumps({"path": "frames", **span}) + "\n")
        return await reply(self, stream_id, message)

    async def timed_serve(self: Any, request: Any, is_chat: bool) -> Any:
        task = asyncio.current_task()
        started[task] = now()
        try:
            return await serve(self, request, is_chat)
        finally:
            started.pop(task, None)

    async def timed_send(operation: Any) -> Any:
        start = started.pop(asyncio.current_task(), None)
        if start is not None:
            out.write(json.dumps({"path": "http", "start": start, "first": now()}) + "\n")
        return await send(operation)

    _replace(frames._Connection, "_open", timed_open)
    _replace(frames._Connection, "_reply", timed_reply)
    _replace(http.GenerationHandlers, "_serve", timed_serve)
    _replace(http, "_send", timed_send)


def _install() -> None:
    # `python -m triskel.cli.main router ...` reads ["-m", "router", ...] here.
    if sys.argv[:1] != ["-m"]:
        return
    for role, install in (("router", _router), ("worker", _worker)):
        if role in sys.argv:
            try:
                install()
            except Exception as error:  # the internals moved: say so, record nothing
                print(f"request_spans: not installed in the {role}: {error!r}", file=sys.stderr)
            return


_install()
