"""The router's internal request types and the seam between its fronts and its core.

The HTTP (OpenAI) and gRPC fronts parse their wire formats into a
`GenerationRequest` and hand it to a `Generator`; they never see workers. The
generator (the orchestrator) yields `TokenEvent`s then one `FinishEvent`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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

    @property
    def has_images(self) -> bool:
        return any(
            isinstance(part, ImagePart) for message in self.messages or () for part in message.parts
        )


@dataclass(frozen=True, slots=True)
class TokenEvent:
    text: str
    token_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FinishEvent:
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int


GenerationEvent = TokenEvent | FinishEvent


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


class OverloadedError(ServiceError):
    """The router's admission queue is full: HTTP 429 with Retry-After / RESOURCE_EXHAUSTED."""


class Generator(Protocol):
    """What the fronts call. Implemented by the orchestrator; faked in front tests."""

    def models(self) -> list[ModelCard]:
        """Models clients may name, in a stable order."""
        ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        """Streams the completion: TokenEvents, then exactly one FinishEvent.

        Raises RequestError before the first event for invalid input, ServiceError at
        any point when serving fails. Closing the iterator early (client gone)
        cancels the request on every worker.
        """
        ...
