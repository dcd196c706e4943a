"""OpenAI response bodies, whole and streamed, and error bodies. Pure, no I/O.

Shapes follow OpenAI's API reference so the official clients parse them:

    chat, whole:    {"object": "chat.completion", "choices": [{"message": {...}}], "usage"}
    chat, stream:   chunks {"object": "chat.completion.chunk", "choices": [{"delta": {...}}]}
                    role delta → content deltas → finish_reason → [usage] → [DONE]
    text, whole:    {"object": "text_completion", "choices": [{"text": ...}], "usage"}
    text, stream:   the same object per chunk, text deltas → finish_reason → [usage] → [DONE]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from triskel.router.types import (
    FinishEvent,
    ModelCard,
    OverloadedError,
    RequestBlocked,
    RequestError,
    ServiceError,
)

Json = dict[str, object]
SSE_DONE = b"data: [DONE]\n\n"


def sse_event(payload: Json) -> bytes:
    """One server-sent event carrying `payload` as JSON."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def models_json(cards: Sequence[ModelCard], created_s: int) -> Json:
    """`GET /v1/models`; `max_model_len` (vLLM's name) is the context window in tokens."""
    data = [
        {
            "id": card.name,
            "object": "model",
            "created": created_s,
            "owned_by": "triskel",
            "max_model_len": card.max_context_tokens,
        }
        for card in cards
    ]
    return {"object": "list", "data": data}


def usage_json(finish: FinishEvent) -> Json:
    return {
        "prompt_tokens": finish.prompt_tokens,
        "completion_tokens": finish.completion_tokens,
        "total_tokens": finish.prompt_tokens + finish.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": finish.cached_prompt_tokens},
    }


@dataclass(frozen=True, slots=True)
class CompletionFormatter:
    """Builds every body of one response, for chat (`is_chat`) or text completions."""

    is_chat: bool
    request_id: str
    model: str
    created_s: int
    # With stream_options.include_usage every chunk carries "usage": null, the last a count.
    include_usage: bool = False

    def complete(self, text: str, finish: FinishEvent) -> Json:
        """The whole (non-streamed) response."""
        choice: Json = {"index": 0}
        if self.is_chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        choice |= {"logprobs": None, "finish_reason": finish.finish_reason}
        return {**self._header(self._object()), "choices": [choice], "usage": usage_json(finish)}

    def stream_start(self) -> list[Json]:
        """The chunks that open a stream: chat's role delta (text completions have none)."""
        if not self.is_chat:
            return []
        return [self._chunk(self._choice({"role": "assistant", "content": ""}, None))]

    def text_chunk(self, text: str) -> Json:
        return self._chunk(self._choice({"content": text} if self.is_chat else text, None))

    def stream_end(self, finish: FinishEvent) -> list[Json]:
        """The chunks that close a stream: the finish reason, then usage if asked for."""
        end = [self._chunk(self._choice({} if self.is_chat else "", finish.finish_reason))]
        if self.include_usage:
            usage_chunk = {**self._header(self._chunk_object()), "choices": []}
            end.append(usage_chunk | {"usage": usage_json(finish)})
        return end

    def _choice(self, delta: Json | str, finish_reason: str | None) -> Json:
        body: Json = {"index": 0}
        body["delta" if self.is_chat else "text"] = delta
        return body | {"logprobs": None, "finish_reason": finish_reason}

    def _chunk(self, choice: Json) -> Json:
        chunk = {**self._header(self._chunk_object()), "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _header(self, object_name: str) -> Json:
        prefix = "chatcmpl" if self.is_chat else "cmpl"
        return {
            "id": f"{prefix}-{self.request_id}",
            "object": object_name,
            "created": self.created_s,
            "model": self.model,
        }

    def _object(self) -> str:
        return "chat.completion" if self.is_chat else "text_completion"

    def _chunk_object(self) -> str:
        return "chat.completion.chunk" if self.is_chat else "text_completion"


# Stands for a chunk's text while its JSON around the text is made. Only a model named
# exactly this could clash (its JSON, quotes included, would match too): TextChunks then
# builds each chunk whole.
_TEXT_MARKER = "\x00triskel:text\x00"


class TextChunks:
    """A stream's text chunks as server-sent events, the chunk serialized once.

    Every text chunk of one response is the same JSON around its text, so an event is
    that text's JSON between two fixed byte strings: byte for byte what `sse_event(
    formatter.text_chunk(text))` writes, without building three dicts a token (~2 µs,
    docs/benchmarks.md). `formatter` is the one it was made for (a routed response gets
    a new formatter, then new chunks)."""

    __slots__ = ("_after", "_before", "formatter")

    def __init__(self, formatter: CompletionFormatter) -> None:
        self.formatter = formatter
        whole = sse_event(formatter.text_chunk(_TEXT_MARKER))
        before, marker, after = whole.partition(orjson.dumps(_TEXT_MARKER))
        # None: the marker was not found once and once only; each chunk is built whole.
        self._before: bytes | None = before if marker and marker not in after else None
        self._after = after

    def event(self, text: str) -> bytes:
        if self._before is None:
            return sse_event(self.formatter.text_chunk(text))
        return self._before + orjson.dumps(text) + self._after


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """How one failure is told to the client, as an HTTP status or as a stream's last event."""

    http_status: int
    error_type: str
    message: str
    param: str | None = None
    # Whole seconds for the Retry-After header; None when retrying would not help.
    retry_after_s: int | None = None

    def json(self) -> Json:
        # OpenAI's own errors carry a string code or null; 4xx ones here keep null.
        code = self.http_status if self.http_status >= 500 else None
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": code,
            }
        }


def error_reply(error: Exception, request_id: str) -> ErrorReply:
    """The reply for a failed request. Unexpected errors say only where to look."""
    if isinstance(error, RequestError):
        return ErrorReply(400, "invalid_request_error", str(error), error.field_name)
    if isinstance(error, RequestBlocked):
        return ErrorReply(403, "permission_denied", str(error), "model")
    if isinstance(error, ServiceError):
        retry_after_s = None
        if error.retry_after_s is not None:
            # Retry-After takes whole seconds; round up so clients never come back early.
            retry_after_s = max(1, math.ceil(error.retry_after_s))
        if isinstance(error, OverloadedError):
            return ErrorReply(429, "rate_limit_exceeded", str(error), retry_after_s=retry_after_s)
        return ErrorReply(503, "service_unavailable", str(error), retry_after_s=retry_after_s)
    return ErrorReply(
        500,
        "internal_error",
        f"internal error; the router's log has details (request {request_id})",
    )
