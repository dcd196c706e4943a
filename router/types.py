"""The router's internal request types and the seam between its fronts and its core.

The HTTP (OpenAI) and gRPC fronts parse their wire formats into a
`GenerationRequest` and hand it to a `Generator`; they never see workers. The
generator (the orchestrator) yields `TokenEvent`s then one `FinishEvent`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    url: str
    width_px: int = 0
    height_px: int = 0


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    parts: tuple[TextPart | ImagePart, ...]


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One request as the fronts parsed it.

    Exactly one of `prompt` / `prompt_token_ids` / `messages` is set. Token ids go
    to the workers as given (no tokenizer), so a benchmark replaying a trace sends
    exactly the trace's prompts.
    """

    request_id: str
    model: str
    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    prompt_token_ids: tuple[int, ...] | None = None
    # None: as many as the context window allows (capped by the generator).
    max_tokens: int | None = None
    ignore_eos: bool = False
    # Request headers the fronts pass on (lower-case names), for policies later.
    headers: dict[str, str] = field(default_factory=dict)
    # Sampling parameters that change the answer (temperature, top_p, seed, stop...), as
    # sorted (name, canonical JSON) pairs: part of a semantic cache key.
    sampling: tuple[tuple[str, str], ...] = ()
    # None: the client did not say (temperature 1.0 for OpenAI's API).
    temperature: float | None = None
    # The reasoning switch (`chat_template_kwargs.enable_thinking`, `reasoning_effort`).
    enable_thinking: bool | None = None
    reasoning_effort: str | None = None
    # Generation ends before the first of these strings, which is not shown (finish "stop").
    stop: tuple[str, ...] = ()
    # Sampling seed; None: the engine's own.
    seed: int | None = None

    @property
    def has_images(self) -> bool:
        return any(
            isinstance(part, ImagePart) for message in self.messages or () for part in message.parts
        )


@dataclass(frozen=True, slots=True)
class TokenEvent:
    text: str
    token_ids: tuple[int, ...]
    # Prompt tokens the worker found cached, when this event tells them (a stream's first
    # tokens): what a FinishEvent reports for a stream cut short at a stop sequence.
    cached_prompt_tokens: int | None = None
    # The stream's finish is already here, next (the worker sent both together): a front
    # may hold these tokens and send them with it, one write instead of two. A hint only:
    # whoever builds a new event from this one leaves it False.
    finish_follows: bool = False


@dataclass(frozen=True, slots=True)
class FinishEvent:
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int


class CacheStatus(StrEnum):
    HIT = "hit"
    MISS = "miss"
    # Not looked up: the request named a model, asked to bypass, is not replayable, its
    # category is not cached, or the cache's store is unreachable.
    BYPASS = "bypass"


# The decision name when the client named a model itself (no semantic stage).
NO_DECISION = "none"


@dataclass(frozen=True, slots=True)
class RouteEvent:
    """What was decided for the request; the first event of every stream.

    The fronts tell it in response headers / gRPC metadata (`x-triskel-model`...).
    """

    model: str
    decision: str = NO_DECISION
    category: str | None = None
    cache: CacheStatus = CacheStatus.BYPASS
    # The reasoning switch sent to the engine (None: left as the client sent it).
    enable_thinking: bool | None = None

    def headers(self) -> dict[str, str]:
        headers = {
            "x-triskel-model": self.model,
            "x-triskel-decision": self.decision,
            "x-triskel-cache": self.cache.value,
        }
        if self.category is not None:
            headers["x-triskel-category"] = self.category
        if self.enable_thinking is not None:
            headers["x-triskel-reasoning"] = "on" if self.enable_thinking else "off"
        return headers


GenerationEvent = RouteEvent | TokenEvent | FinishEvent


@dataclass(frozen=True, slots=True)
class ModelCard:
    name: str
    max_context_tokens: int


class RequestError(Exception):
    """The client's request is invalid: HTTP 400 / gRPC INVALID_ARGUMENT.

    `field` names the offending field in the client's terms (e.g. "messages[0].content",
    "max_tokens", "model"); the message says what is wrong and the limit.
    """

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name
        self.message = message


class ServiceError(Exception):
    """The request was valid but could not be served (no worker, a worker failed).

    HTTP 503 before streaming starts / an error event after; gRPC UNAVAILABLE.
    `retry_after_s` is set when trying again later may help.
    """

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RequestBlocked(Exception):
    """A routing decision refuses the request: HTTP 403 / gRPC PERMISSION_DENIED."""

    def __init__(self, decision: str, message: str) -> None:
        text = f"refused by routing decision {decision!r}" + (f": {message}" if message else "")
        super().__init__(text)
        self.decision = decision


class OverloadedError(ServiceError):
    """The router's admission queue is full: HTTP 429 with Retry-After / RESOURCE_EXHAUSTED."""


class Generator(Protocol):
    """What the fronts call. Implemented by the orchestrator; faked in front tests."""

    def models(self) -> list[ModelCard]:
        """Models clients may name, in a stable order."""
        ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        """Streams the completion: at most one RouteEvent first, TokenEvents, then exactly
        one FinishEvent.

        Raises RequestError before the first event for invalid input, ServiceError at
        any point when serving fails. Closing the iterator early (client gone)
        cancels the request on every worker.
        """
        ...
