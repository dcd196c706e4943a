"""`POST /v1/completions` and `POST /v1/chat/completions`: parse, pick a flow, answer.

A streamed response is prepared (status line and headers sent) only when the flow's
first event arrived, a `KvReceived` or a token, so anything failing before that (a
stale or unreachable KV, a bootstrap room that never comes) is a real HTTP status.
A failure after that ends the stream with `data: {"error": ...}` and `[DONE]`.
Closing the flow aborts the engine request: on every path, a client that went away
(the app runs with handler_cancellation) included.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
from aiohttp import web

from triskel.common.http_body import BodyReadError, read_body
from triskel.common.off_loop import INLINE_BODY_BYTES, off_loop_if_large
from triskel.common.tokenizer import MockTokenizer
from triskel.workers.api import Engine, KvReceived, Tokens
from triskel.workers.openai_http.errors import ApiError, Json, bad_request, engine_error
from triskel.workers.openai_http.flow_events import Finished, Flow, FlowEvent, Job
from triskel.workers.openai_http.flows import Flows
from triskel.workers.openai_http.metrics import RequestTracker, WorkerHttpMetrics
from triskel.workers.openai_http.prompts import encode_prompt, max_tokens_for
from triskel.workers.openai_http.requests import GenerateRequest, parse_generate_request
from triskel.workers.openai_http.responses import SSE_DONE, CompletionShape, Usage, sse_events

_log = logging.getLogger(__name__)
T = TypeVar("T")

# Long chat histories and token-id prompts (aiohttp's default is 1 MiB).
MAX_BODY_BYTES = 32 * 1024 * 1024
_SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    # Stop reverse proxies (nginx) from buffering the stream.
    "X-Accel-Buffering": "no",
}


# A decode that pulled KV says how much and how fast (Triskel's router reads them).
KV_BYTES_HEADER = "X-Triskel-Kv-Received-Bytes"
KV_MS_HEADER = "X-Triskel-Kv-Transfer-Ms"


def kv_headers(event: KvReceived) -> dict[str, str]:
    return {KV_BYTES_HEADER: str(event.num_bytes), KV_MS_HEADER: f"{event.transfer_ms:.3f}"}


class _SseResponse(web.StreamResponse):
    """Headers wait for the first chunk (aiohttp sends them at once by default)."""

    _send_headers_immediately = False


class _ClientGone(Exception):
    """Writing to the client failed: it closed the connection."""


class GenerationHandlers:
    def __init__(
        self, engine: Engine, flows: Flows, metrics: WorkerHttpMetrics, tokenizer: MockTokenizer
    ) -> None:
        self._engine = engine
        self._flows = flows
        self._metrics = metrics
        self._tokenizer = tokenizer

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, is_chat=False)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, is_chat=True)

    async def _serve(self, http_request: web.Request, is_chat: bool) -> web.StreamResponse:
        request_id = uuid.uuid4().hex  # the engine's: unique even when clients reuse theirs
        response_id = http_request.headers.get("x-request-id") or request_id
        headers = {"x-request-id": response_id}
        request: GenerateRequest | None = None
        try:
            request = await read_parsed(
                http_request, lambda body: parse_generate_request(body, is_chat)
            )
            job = await self._job(request, request_id)
            events = self._flows.select(request, job)
        except ApiError as error:
            if request is not None:
                self._flows.fail_room(request, error)
            return error_response(error, headers)
        description = self._engine.description
        shape = CompletionShape(
            is_chat,
            response_id,
            request.model or description.model,
            int(time.time()),
            request.include_usage,
            request.return_token_ids,
        )
        answer = _Answer(job, shape, self._metrics.track(), headers)
        try:
            if request.stream:
                return await answer.stream(http_request, events)
            return await answer.whole(events)
        finally:
            await events.aclose()

    async def _job(self, request: GenerateRequest, request_id: str) -> Job:
        description = self._engine.description
        if request.model is not None and request.model != description.model:
            raise ApiError(
                404,
                f"model: the model {request.model!r} does not exist; this worker serves "
                f"{description.model!r}",
                "model",
            )
        token_ids = await encode_prompt(
            request.prompt, self._tokenizer, description.max_context_tokens
        )
        max_tokens = max_tokens_for(request, len(token_ids), description)
        return Job(
            request_id,
            tuple(token_ids),
            max_tokens,
            request.ignore_eos,
            request.prompt.field_name,
            request.stop,
            request.seed,
        )


class _Answer:
    """Turns one flow's events into the client's response, and accounts the request."""

    def __init__(
        self,
        job: Job,
        shape: CompletionShape,
        tracker: RequestTracker,
        headers: dict[str, str],
    ) -> None:
        self._job = job
        self._shape = shape
        self._tracker = tracker
        self._headers = headers

    async def whole(self, events: Flow) -> web.Response:
        pieces: list[str] = []
        token_ids: list[int] = []
        try:
            async for event in events:
                self._observe(event)
                if isinstance(event, KvReceived):
                    self._headers |= kv_headers(event)
                elif isinstance(event, Tokens):
                    pieces.append(event.text)
                    token_ids.extend(event.token_ids)
                elif isinstance(event, Finished):
                    body = self._shape.whole(
                        "".join(pieces),
                        event.finish_reason,
                        self._usage(event),
                        event.kv_transfer_params,
                        tuple(token_ids),
                    )
                    return json_response(body, self._headers)
            raise RuntimeError("the flow ended without finishing")
        except Exception as error:
            return error_response(self._error(error), self._headers)

    async def stream(self, http_request: web.Request, events: Flow) -> web.StreamResponse:
        response: web.StreamResponse | None = None
        try:
            async for event in events:
                self._observe(event)
                opening = b""
                if response is None:
                    headers = {**_SSE_HEADERS, **self._headers}
                    if isinstance(event, KvReceived):
                        headers |= kv_headers(event)
                    response = _SseResponse(headers=headers)
                    await _send(response.prepare(http_request))
                    opening = sse_events(self._shape.opening_chunks())
                if isinstance(event, Tokens):
                    chunk = self._shape.text_chunk(event.text, event.token_ids)
                    # Headers, opening and first tokens in one send (each costs a wakeup).
                    await _send(response.write(opening + sse_events([chunk])))
                elif isinstance(event, Finished):
                    closing = self._shape.closing_chunks(
                        event.finish_reason, self._usage(event), event.kv_transfer_params
                    )
                    await _send(response.write_eof(opening + sse_events(closing) + SSE_DONE))
                    return response
            raise RuntimeError("the flow ended without finishing")
        except _ClientGone:
            assert response is not None  # only writes raise _ClientGone
            return response
        except Exception as error:
            api_error = self._error(error)
            if response is None:
                return error_response(api_error, self._headers)
            # Tell the client plainly instead of ending the stream as if it were complete.
            with contextlib.suppress(_ClientGone):
                await _send(response.write(sse_events([api_error.json()]) + SSE_DONE))
            return response

    def _observe(self, event: FlowEvent) -> None:
        if isinstance(event, KvReceived):
            self._tracker.on_kv_received(event.num_bytes)
        elif isinstance(event, Tokens):
            self._tracker.on_tokens(len(event.token_ids))
        else:
            if event.is_kv_exported:
                self._tracker.on_kv_exported()
            self._tracker.on_finished(len(self._job.prompt_token_ids))

    def _usage(self, finished: Finished) -> Usage:
        return Usage(
            len(self._job.prompt_token_ids),
            finished.num_completion_tokens,
            finished.num_cached_tokens,
        )

    def _error(self, error: Exception) -> ApiError:
        reply = engine_error(error, self._job.prompt_field, self._job.request_id)
        if reply.status == 500:
            _log.error("request %s failed", self._job.request_id, exc_info=error)
        return reply


async def read_json(request: web.Request) -> object:
    """The request's JSON body; ApiError (400) when it is too large or not JSON."""
    return _json(await _read_body(request))


async def read_parsed(request: web.Request, parse: Callable[[object], T]) -> T:
    """`parse` of the request's JSON body, in a thread for a large body (a long chat,
    many token ids): the loop keeps serving meanwhile."""
    raw = await _read_body(request)
    body = _json(raw)
    return await off_loop_if_large(len(raw), INLINE_BODY_BYTES, lambda: parse(body))


async def _read_body(request: web.Request) -> bytes:
    try:
        return await read_body(request, MAX_BODY_BYTES)
    except BodyReadError as error:
        raise ApiError(error.status, str(error), error.field_name) from None


def _json(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise bad_request("body", f"is not valid JSON: {error}") from None


def json_response(
    body: Json, headers: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(error.json(), headers, error.status)


async def _send(operation: Awaitable[object]) -> None:
    """Awaits one write; a closed connection becomes `_ClientGone`."""
    try:
        await operation
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError included
        raise _ClientGone from None
