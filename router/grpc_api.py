"""The router's gRPC front, `triskel.v1.Router` (grpc.aio): a thin shell over a `Generator`.

`Generate` streams a `TokenChunk` per generated piece, then one `Finished`.
Errors become statuses: a bad request INVALID_ARGUMENT (the message names the
field), a serving failure UNAVAILABLE, anything else INTERNAL. When the client
cancels, the generator is closed, which cancels the request on the workers.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import AsyncIterator, Sequence

import grpc

from triskel.common.grpc_server import start_server
from triskel.router.auth.authenticator import Authenticator
from triskel.router.auth.errors import AuthError, RateLimited, Unauthenticated
from triskel.router.metrics import RequestTimer, RouterMetrics, model_label, status_of
from triskel.router.request_checks import GRPC_SPELLING, check_request
from triskel.router.streams import close_quietly
from triskel.router.types import (
    ChatMessage,
    GenerationEvent,
    GenerationRequest,
    Generator,
    ImagePart,
    OverloadedError,
    RequestBlocked,
    RequestError,
    RouteEvent,
    ServiceError,
    TextPart,
    TokenEvent,
)
from triskel.v1 import router_pb2, router_pb2_grpc

_log = logging.getLogger(__name__)

SERVICE_NAME = "triskel.v1.Router"
# Credentials stay at the front door: routing policies never need them.
_PRIVATE_METADATA = frozenset({"authorization", "x-api-key", "cookie"})


class RouterServicer(router_pb2_grpc.RouterServicer):
    """With an `authenticator`, every call needs a credential in its metadata
    (`authorization: Bearer ...` or `x-api-key`); health and reflection stay open."""

    def __init__(
        self,
        generator: Generator,
        metrics: RouterMetrics,
        authenticator: Authenticator | None = None,
    ) -> None:
        self._generator = generator
        self._metrics = metrics
        self._auth = authenticator

    async def Generate(
        self, request: router_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[router_pb2.GenerateResponse]:
        timer = RequestTimer()
        served = [card.name for card in self._generator.models()]
        label = model_label(request.model, served)
        try:
            principal = None
            if self._auth is not None:  # before converting: a stranger's costs nothing
                principal = await self._auth.authenticate(_metadata(context))
            generation = generation_request(request, _passed_metadata(context))
            if self._auth is not None and principal is not None:
                generation = await self._auth.admit(principal, generation)
        except RequestError as error:
            self._metrics.observe_request(label, "grpc", "client_error")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            return  # abort raises; kept for readers
        except AuthError as error:
            self._metrics.observe_request(label, "grpc", "client_error")
            await context.abort(_auth_status(error), str(error))
            return
        except RateLimited as error:
            self._metrics.observe_request(label, "grpc", "rejected")
            await _abort(context, error, request.request_id)
            return
        tracker = self._metrics.track_request(label, "grpc", timer)
        failure: Exception | None = None
        events: AsyncIterator[GenerationEvent] | None = None
        try:
            events = self._generator.generate(generation)
            async for event in events:
                tracker.on_event(event)
                if isinstance(event, RouteEvent):
                    # Sent with the first message (metadata precedes it on the wire).
                    await context.send_initial_metadata(tuple(event.headers().items()))
                    continue
                if isinstance(event, TokenEvent):
                    chunk = router_pb2.TokenChunk(text=event.text, token_ids=event.token_ids)
                    yield router_pb2.GenerateResponse(chunk=chunk)
                    continue
                tracker.close("ok")
                usage = router_pb2.Usage(
                    prompt_tokens=event.prompt_tokens,
                    completion_tokens=event.completion_tokens,
                    cached_prompt_tokens=event.cached_prompt_tokens,
                )
                finished = router_pb2.Finished(
                    finish_reason=event.finish_reason,
                    usage=usage,
                    request_id=generation.request_id,
                )
                yield router_pb2.GenerateResponse(finished=finished)
                return
            raise RuntimeError("the generator ended without a FinishEvent")
        except Exception as error:
            failure = error
            tracker.close(status_of(error))
        finally:
            # Also reached when the client cancels (the task is cancelled or this
            # generator closed): the generator's cleanup cancels the workers' side.
            tracker.close("cancelled")
            if events is not None:
                await close_quietly(events)
        assert failure is not None  # the try block either returned or raised
        await _abort(context, failure, generation.request_id)

    async def ListModels(
        self, request: router_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.ListModelsResponse:
        cards = self._generator.models()
        if self._auth is not None:
            try:
                principal = await self._auth.authenticate(_metadata(context))
            except AuthError as error:
                await context.abort(_auth_status(error), str(error))
            cards = self._auth.visible(principal, cards)
        models = [
            router_pb2.ModelInfo(name=card.name, max_context_tokens=card.max_context_tokens)
            for card in cards
        ]
        return router_pb2.ListModelsResponse(models=models)


async def start_grpc_server(
    servicer: RouterServicer,
    address: str,
    credentials: grpc.ServerCredentials | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    """Serves `servicer` on `address` (port 0 picks one) with health and reflection,
    over TLS with `credentials`; `reuse_port` for sibling processes sharing the port.

    Stop it with `await server.stop(grace_s)`.
    """
    return await start_server(
        lambda server: router_pb2_grpc.add_RouterServicer_to_server(servicer, server),
        SERVICE_NAME,
        address,
        credentials,
        reuse_port=reuse_port,
    )


def generation_request(
    request: router_pb2.GenerateRequest, headers: dict[str, str]
) -> GenerationRequest:
    """Checks what the proto cannot express and converts; raises RequestError naming the field."""
    request_id = request.request_id or secrets.token_hex(16)
    if not request.model:
        raise RequestError("model", "is required")
    if request.max_tokens == 0:
        raise RequestError("max_tokens", "must be > 0, got 0")
    kind = request.WhichOneof("input")
    if kind is None:
        raise RequestError("input", "set one of prompt, prompt_token_ids or chat")
    prompt, token_ids, messages = None, None, None
    if kind == "prompt":
        if not request.prompt:
            raise RequestError("prompt", "must not be empty")
        prompt = request.prompt
    elif kind == "prompt_token_ids":
        if not request.prompt_token_ids.ids:
            raise RequestError("prompt_token_ids.ids", "must not be empty")
        token_ids = tuple(request.prompt_token_ids.ids)
    else:
        messages = _messages(request.chat.messages)
    generation = GenerationRequest(
        request_id=request_id,
        model=request.model,
        prompt=prompt,
        prompt_token_ids=token_ids,
        messages=messages,
        max_tokens=request.max_tokens,
        ignore_eos=request.ignore_eos,
        headers=headers,
        stop=tuple(request.stop),
        seed=request.seed if request.HasField("seed") else None,
    )
    check_request(generation, GRPC_SPELLING)
    return generation


def _messages(messages: Sequence[router_pb2.ChatMessage]) -> tuple[ChatMessage, ...]:
    if not messages:
        raise RequestError("chat.messages", "must contain at least one message")
    converted = []
    for i, message in enumerate(messages):
        field = f"chat.messages[{i}]"
        if not message.content:
            raise RequestError(f"{field}.content", "must contain at least one part")
        parts = tuple(
            _part(part, f"{field}.content[{j}]") for j, part in enumerate(message.content)
        )
        converted.append(ChatMessage(message.role, parts))
    return tuple(converted)


def _part(part: router_pb2.ContentPart, field: str) -> TextPart | ImagePart:
    kind = part.WhichOneof("part")
    if kind == "text":
        return TextPart(part.text)
    if kind == "image":
        if not part.image.url:
            raise RequestError(f"{field}.image.url", "is required")
        return ImagePart(part.image.url, part.image.width_px, part.image.height_px)
    raise RequestError(field, "set text or image")


def _passed_metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    """Text metadata as headers (gRPC keys are lower-case already)."""
    return {
        key: value
        for key, value in context.invocation_metadata() or ()
        if not key.endswith("-bin") and key not in _PRIVATE_METADATA
    }


def _metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    """Every text metadata entry, credentials included: for the authenticator only."""
    return {k: v for k, v in context.invocation_metadata() or () if not k.endswith("-bin")}


def _auth_status(error: AuthError) -> grpc.StatusCode:
    if isinstance(error, Unauthenticated):
        return grpc.StatusCode.UNAUTHENTICATED
    return grpc.StatusCode.PERMISSION_DENIED


async def _abort(context: grpc.aio.ServicerContext, error: Exception, request_id: str) -> None:
    """Ends the call with `error`'s status; a retry hint (a full queue, a rate limit) goes
    in `retry-after` trailing metadata, whole seconds as HTTP's Retry-After."""
    code, message = _status(error, request_id)
    trailing: tuple[tuple[str, str], ...] = ()
    if isinstance(error, ServiceError) and error.retry_after_s is not None:
        trailing = (("retry-after", str(max(1, math.ceil(error.retry_after_s)))),)
    await context.abort(code, message, trailing_metadata=trailing)


def _status(error: Exception, request_id: str) -> tuple[grpc.StatusCode, str]:
    if isinstance(error, RequestError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(error)
    if isinstance(error, RequestBlocked):
        return grpc.StatusCode.PERMISSION_DENIED, str(error)
    if isinstance(error, OverloadedError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(error)
    if isinstance(error, ServiceError):
        return grpc.StatusCode.UNAVAILABLE, str(error)
    _log.error("request %s failed unexpectedly", request_id, exc_info=error)
    return grpc.StatusCode.INTERNAL, f"internal error; the router's log has details ({request_id})"
