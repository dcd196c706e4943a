"""Resolve the model and lay the prompt out as text pieces and images, in order."""

from __future__ import annotations

from collections.abc import Sequence

from triskel.common.tokenizer import (
    CHAT_GENERATION_PROMPT,
    CHAT_TURN_END,
    MockTokenizer,
    chat_turn_start,
)
from triskel.router.registry import WorkerRegistry
from triskel.router.stages.base import RequestContext
from triskel.router.types import ChatMessage, ImagePart, RequestError, TextPart


class PrepareStage:
    name = "prepare"

    def __init__(self, registry: WorkerRegistry, tokenizer: MockTokenizer) -> None:
        self._registry = registry
        self._tokenizer = tokenizer

    async def run(self, ctx: RequestContext) -> None:
        request = ctx.request
        pools = self._registry.pools(request.model)
        if pools is None:
            known = ", ".join(card.name for card in self._registry.model_cards()) or "none"
            raise RequestError("model", f"unknown model {request.model!r}; served: {known}")
        ctx.pools = pools
        if request.max_tokens is not None and request.max_tokens < 1:
            raise RequestError("max_tokens", f"must be >= 1, got {request.max_tokens}")
        if request.messages is not None:
            ctx.segments = chat_segments(request.messages, request.enable_thinking)
        elif request.prompt_token_ids:
            ctx.segments = []  # already tokens: the tokenize stage takes them as they are
        elif request.prompt:
            ctx.segments = [request.prompt]
        else:
            raise RequestError("prompt", "must not be empty")
        self._check_length(ctx)

    def _check_length(self, ctx: RequestContext) -> None:
        """Refuses text too long to fit the context window whatever it encodes to, before
        images are encoded or text tokenized: their cost grows with the prompt's length."""
        num_chars = sum(len(segment) for segment in ctx.segments if isinstance(segment, str))
        context_tokens = ctx.model_pools.max_context_tokens
        max_chars = self._tokenizer.max_prompt_chars(context_tokens - 1)
        if num_chars > max_chars:
            request = ctx.request
            raise RequestError(
                "prompt" if request.messages is None else "messages",
                f"is {num_chars} characters; the model {request.model} accepts at most "
                f"{context_tokens - 1} prompt tokens (context window {context_tokens}), and "
                f"no text over {max_chars} characters fits in them",
            )


# The reasoning switch as hybrid-thinking chat templates (Qwen3's) render it: thinking
# opens a think block for the model to fill; "off" hands it an empty one.
THINKING_ON = "<think>\n"
THINKING_OFF = "<think>\n\n</think>\n\n"


def chat_segments(
    messages: Sequence[ChatMessage], enable_thinking: bool | None = None
) -> list[str | ImagePart]:
    """Chat messages under the mock chat template, images kept in place."""
    if not messages:
        raise RequestError("messages", "must contain at least one message")
    segments: list[str | ImagePart] = []
    for index, message in enumerate(messages):
        if not message.parts:
            raise RequestError(f"messages[{index}].content", "must not be empty")
        segments.append(chat_turn_start(message.role))
        for part in message.parts:
            segments.append(part.text if isinstance(part, TextPart) else part)
        segments.append(CHAT_TURN_END)
    segments.append(CHAT_GENERATION_PROMPT)
    if enable_thinking is not None:
        segments.append(THINKING_ON if enable_thinking else THINKING_OFF)
    return segments
