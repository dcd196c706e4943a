"""The router's OpenAI-compatible HTTP front (aiohttp): a thin shell over a `Generator`.

Request bodies are parsed by `openai.parsing`, responses shaped by `openai.responses`;
this module does the I/O. A streamed response starts (headers and first bytes) only
once the generator yields its first event, so a failure before that is a plain HTTP
error (400 / 503 / 500); a failure after it ends the stream with an error event and
`[DONE]`. When the client goes away the generator is closed, which cancels the
request on the workers.

Disconnects are noticed on the next write. Run the app with
`AppRunner(app, handler_cancellation=True)` to also stop waiting requests
(a long prefill, a non-streamed completion) the moment the client leaves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import orjson
from aiohttp import web

from triskel.common.http_body import BodyReadError, read_body
from triskel.common.off_loop import INLINE_BODY_BYTES, off_loop_if_large
from triskel.router.auth.authenticator import Authenticator
from triskel.router.auth.errors import AuthError, RateLimited, Unauthenticated
from triskel.router.auth.principal import Principal
from triskel.router.metrics import (
    RequestTimer,
    RequestTracker,
    RouterMetrics,
    model_label,
    status_of,
)
from triskel.router.openai.parsing import (
    ParsedRequest,
    parse_chat_request,
    parse_completion_request,
    passed_headers,
)
from triskel.router.openai.responses import (
    SSE_DONE,
    CompletionFormatter,
    ErrorReply,
    Json,
    TextChunks,
    error_reply,
    models_json,
    sse_event,
)
from triskel.router.request_checks import HTTP_SPELLING, check_request_id
from triskel.router.streams import close_quietly
from triskel.router.types import (
    GenerationEvent,
    Generator,
    RequestBlocked,
    RequestError,
    RouteEvent,
    ServiceError,
    TokenEvent,
)

_log = logging.getLogger(__name__)

# Room for images sent inline as data: URLs (aiohttp's default is 1 MiB).
MAX_BODY_BYTES = 32 * 1024 * 1024
_SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    # Stop reverse proxies (nginx) from buffering the stream.
    "X-Accel-Buffering": "no",
}

Parser = Callable[[object, str, Mapping[str, str]], ParsedRequest]


def build_http_app(
    generator: Generator,
    metrics: RouterMetrics,
    serves_metrics: bool = True,
    authenticator: Authenticator | None = None,
) -> web.Application:
    """`/v1/chat/completions`, `/v1/completions`, `/v1/models`, `/health`, and `/metrics`
    unless `serves_metrics` is false (`--metrics-address` gives it a listener of its own).
    With an `authenticator` the /v1 routes need a credential; /health never does."""
    front = _HttpFront(generator, metrics, authenticator)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/v1/chat/completions", front.chat_completions)
    app.router.add_post("/v1/completions", front.completions)
    app.router.add_get("/v1/models", front.list_models)
    app.router.add_get("/health", front.health)
    if serves_metrics:
        app.router.add_get("/metrics", front.metrics)
    return app


class _SseResponse(web.StreamResponse):
    """A stream whose headers wait for the first chunk (aiohttp sends them at once by
    default): one send fewer before the client's first token."""

    _send_headers_immediately = False


class _ClientGone(Exception):
    """Writing to the client failed: it closed the connection."""


class _HttpFront:
    def __init__(
        self,
        generator: Generator,
        metrics: RouterMetrics,
        authenticator: Authenticator | None = None,
    ) -> None:
        self._generator = generator
        self._metrics = metrics
        self._auth = authenticator
        self._started_s = int(time.time())

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, parse_chat_request, is_chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, parse_completion_request, is_chat=False)

    async def list_models(self, request: web.Request) -> web.Response:
        cards = self._generator.models()
        if self._auth is not None:
            try:
                principal = await self._auth.authenticate(request.headers)
            except AuthError as error:
                return _auth_error_response(error, {})
            cards = self._auth.visible(principal, cards)
        return _json_response(models_json(cards, self._started_s))

    async def health(self, request: web.Request) -> web.Response:
        return _json_response({"status": "ok"})

    async def metrics(self, request: web.Request) -> web.Response:
        body, content_type = self._metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _serve(
        self, request: web.Request, parse: Parser, is_chat: bool
    ) -> web.StreamResponse:
        timer = RequestTimer()
        generated = secrets.token_hex(16)  # a uuid4's 32 hex digits at a quarter of its cost
        request_id = request.headers.get("x-request-id") or generated
        # A malformed id is never echoed back: the reply has ours until the client's passes.
        reply_headers = {"x-request-id": generated}
        body: object = None
        principal: Principal | None = None
        try:
            check_request_id(request_id, HTTP_SPELLING.request_id)
            reply_headers["x-request-id"] = request_id
            if self._auth is not None:  # before the body: a stranger's costs nothing
                principal = await self._auth.authenticate(request.headers)
            raw = await read_body(request, MAX_BODY_BYTES)
            body = _json(raw)
            headers = passed_headers(request.headers)
            # A large body (a long chat, many token ids) is parsed in a thread.
            parsed = await off_loop_if_large(
                len(raw), INLINE_BODY_BYTES, lambda: parse(body, request_id, headers)
            )
            if self._auth is not None and principal is not None:
                admitted = await self._auth.admit(principal, parsed.request)
                parsed = dataclasses.replace(parsed, request=admitted)
        except AuthError as error:
            model = body.get("model") if isinstance(body, dict) else None
            self._metrics.observe_request(self._model_label(model), "http", "client_error")
            return _auth_error_response(error, reply_headers)
        except RateLimited as error:  # answered as a full queue is: 429 with Retry-After
            label = self._model_label(parsed.request.model)
            self._metrics.observe_request(label, "http", "rejected")
            return self._error_response(error, reply_headers)
        except BodyReadError as error:
            self._metrics.observe_request(self._model_label(None), "http", "client_error")
            return _body_error_response(error, reply_headers)
        except RequestError as error:
            model = body.get("model") if isinstance(body, dict) else None
            self._metrics.observe_request(self._model_label(model), "http", "client_error")
            return self._error_response(error, reply_headers)
        tracker = self._metrics.track_request(
            self._model_label(parsed.request.model), "http", timer
        )
        formatter = CompletionFormatter(
            is_chat, request_id, parsed.request.model, int(time.time()), parsed.include_usage
        )
        try:
            events = self._generator.generate(parsed.request)
        except Exception as error:  # a Generator that fails before returning its stream
            tracker.close(status_of(error))
            return self._error_response(error, reply_headers)
        try:
            if parsed.stream:
                return await self._stream(request, events, tracker, formatter, reply_headers)
            return await self._complete(events, tracker, formatter, reply_headers)
        finally:
            # Reached on every path, a cancelled handler included: the generator's own
            # cleanup cancels the request on the workers.
            tracker.close("cancelled")
            await close_quietly(events)

    async def _complete(
        self,
        events: AsyncIterator[GenerationEvent],
        tracker: RequestTracker,
        formatter: CompletionFormatter,
        reply_headers: dict[str, str],
    ) -> web.Response:
        pieces: list[str] = []
        try:
            async for event in events:
                tracker.on_event(event)
                if isinstance(event, RouteEvent):
                    formatter = _routed(formatter, event, reply_headers)
                    continue
                if isinstance(event, TokenEvent):
                    pieces.append(event.text)
                else:
                    tracker.close("ok")
                    body = formatter.complete("".join(pieces), event)
                    return _json_response(body, reply_headers)
            raise RuntimeError("the generator ended without a FinishEvent")
        except Exception as error:
            tracker.close(status_of(error))
            return self._error_response(error, reply_headers)

    async def _stream(
        self,
        request: web.Request,
        events: AsyncIterator[GenerationEvent],
        tracker: RequestTracker,
        formatter: CompletionFormatter,
        reply_headers: dict[str, str],
    ) -> web.StreamResponse:
        response: web.StreamResponse | None = None
        # Bytes not sent yet: tokens whose finish is already here go out with it.
        held = b""
        chunks: TextChunks | None = None
        try:
            async for event in events:
                tracker.on_event(event)
                if isinstance(event, RouteEvent):
                    formatter = _routed(formatter, event, reply_headers)
                    continue
                if response is None:
                    response = _SseResponse(headers={**_SSE_HEADERS, **reply_headers})
                    await _send(response.prepare(request))
                    held = _sse(formatter.stream_start())
                if isinstance(event, TokenEvent):
                    # Headers, the opening chunk and the first tokens leave in one send,
                    # and the last tokens with the finish: on loopback each send costs
                    # the sender the receiver's TCP work too (docs/benchmarks.md).
                    if chunks is None or chunks.formatter is not formatter:
                        chunks = TextChunks(formatter)
                    held += chunks.event(event.text)
                    if not event.finish_follows:
                        await _send(response.write(held))
                        held = b""
                    continue
                tracker.close("ok")
                closing = _sse(formatter.stream_end(event)) + SSE_DONE
                await _send(response.write_eof(held + closing))
                return response
            raise RuntimeError("the generator ended without a FinishEvent")
        except _ClientGone:
            tracker.close("cancelled")
            assert response is not None  # only writes raise _ClientGone
            return response
        except Exception as error:
            tracker.close(status_of(error))
            if response is None:
                return self._error_response(error, reply_headers)
            # Tell the client plainly instead of ending the stream as if it were complete.
            reply = self._reply(error, reply_headers["x-request-id"])
            with contextlib.suppress(_ClientGone):
                await _send(response.write(held + _sse([reply.json()]) + SSE_DONE))
            return response

    def _error_response(self, error: Exception, reply_headers: dict[str, str]) -> web.Response:
        reply = self._reply(error, reply_headers["x-request-id"])
        headers = dict(reply_headers)
        if reply.retry_after_s is not None:
            headers["Retry-After"] = str(reply.retry_after_s)
        return _json_response(reply.json(), headers, reply.http_status)

    def _reply(self, error: Exception, request_id: str) -> ErrorReply:
        if not isinstance(error, RequestError | RequestBlocked | ServiceError):
            _log.exception("request %s failed unexpectedly", request_id, exc_info=error)
        return error_reply(error, request_id)

    def _model_label(self, model: object) -> str:
        return model_label(model, (card.name for card in self._generator.models()))


def _routed(
    formatter: CompletionFormatter, route: RouteEvent, reply_headers: dict[str, str]
) -> CompletionFormatter:
    """Tells the decision in the reply's headers; the body names the model that answered
    (OpenAI's `model` field), not the alias the client sent."""
    reply_headers.update(route.headers())
    return dataclasses.replace(formatter, model=route.model)


def _body_error_response(error: BodyReadError, reply_headers: dict[str, str]) -> web.Response:
    """A 400 / 408 naming the body; the connection closes, as the rest of the body (if it
    ever comes) cannot be told from the next request."""
    reply = ErrorReply(error.status, "invalid_request_error", str(error), error.field_name)
    response = _json_response(reply.json(), reply_headers, reply.http_status)
    response.force_close()
    return response


def _auth_error_response(error: AuthError, reply_headers: dict[str, str]) -> web.Response:
    """401 (with the challenge RFC 6750 asks for) or 403, in OpenAI's error shape."""
    headers = dict(reply_headers)
    if isinstance(error, Unauthenticated):
        challenge = 'Bearer realm="triskel"'
        if error.reason != "missing":
            challenge += ', error="invalid_token"'
        headers["WWW-Authenticate"] = challenge
        reply = ErrorReply(401, "authentication_error", str(error), error.field_name)
    else:
        reply = ErrorReply(403, "permission_denied", str(error), error.field_name)
    response = _json_response(reply.json(), headers, reply.http_status)
    if isinstance(error, Unauthenticated):
        # The body was never read: closing is cheaper than draining a stranger's upload.
        response.force_close()
    return response


def _json(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise RequestError("body", f"is not valid JSON: {error}") from None


def _sse(payloads: list[Json]) -> bytes:
    return b"".join(sse_event(payload) for payload in payloads)


async def _send(operation: Awaitable[object]) -> None:
    """Awaits one write; a closed connection becomes `_ClientGone`."""
    try:
        await operation
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError included
        raise _ClientGone from None


def _json_response(
    body: Json, headers: Mapping[str, str] | None = None, status: int = 200
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )
