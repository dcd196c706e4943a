"""Turn the prompt into token ids (or take the client's) and check them against the model."""

from __future__ import annotations

from triskel.common.off_loop import INLINE_PROMPT_CHARS, off_loop_if_large
from triskel.common.tokenizer import MockTokenizer
from triskel.router.stages.base import RequestContext
from triskel.router.types import ImagePart, RequestError


class TokenizeStage:
    name = "tokenize"

    def __init__(self, tokenizer: MockTokenizer) -> None:
        self._tokenizer = tokenizer

    async def run(self, ctx: RequestContext) -> None:
        request = ctx.request
        input_field = "prompt" if request.messages is None else "messages"
        context_tokens = ctx.model_pools.max_context_tokens
        given_ids = request.prompt_token_ids or ()
        if len(given_ids) >= context_tokens:  # before the vocabulary check reads them all
            raise _too_long(input_field, len(given_ids), request.model, context_tokens)
        num_chars = sum(len(segment) for segment in ctx.segments if isinstance(segment, str))
        # A long prompt is encoded in a thread: the loop keeps serving meanwhile.
        token_ids = await off_loop_if_large(
            num_chars, INLINE_PROMPT_CHARS, lambda: self._prompt_ids(ctx)
        )
        if not token_ids:
            raise RequestError(input_field, "encodes to zero tokens")
        room = context_tokens - len(token_ids)
        if room < 1:
            raise _too_long(input_field, len(token_ids), request.model, context_tokens)
        if request.max_tokens is not None and request.max_tokens > room:
            raise RequestError(
                "max_tokens",
                f"{request.max_tokens} + {len(token_ids)} prompt tokens exceeds the context "
                f"window of {context_tokens} tokens; at most {room} allowed for this prompt",
            )
        ctx.prompt_token_ids = token_ids
        # No max_tokens: generate until the model stops or the context is full (OpenAI's rule).
        ctx.max_tokens = request.max_tokens if request.max_tokens is not None else room

    def _prompt_ids(self, ctx: RequestContext) -> list[int]:
        token_ids = self._checked_ids(ctx.request.prompt_token_ids or ())
        images = iter(ctx.image_token_ids)
        for segment in ctx.segments:
            if isinstance(segment, ImagePart):
                token_ids.extend(next(images))
            else:
                token_ids.extend(self._tokenizer.encode(segment))
        return token_ids

    def _checked_ids(self, token_ids: tuple[int, ...]) -> list[int]:
        """Client-given token ids, refused when the model's vocabulary has no such id."""
        vocab_size = self._tokenizer.vocab_size
        if token_ids and max(token_ids) >= vocab_size:
            position = next(p for p, value in enumerate(token_ids) if value >= vocab_size)
            raise RequestError(
                f"prompt[{position}]",
                f"token id {token_ids[position]} is outside the vocabulary of {vocab_size} tokens",
            )
        return list(token_ids)


def _too_long(input_field: str, num_tokens: int, model: str, context_tokens: int) -> RequestError:
    return RequestError(
        input_field,
        f"is {num_tokens} tokens; the model {model} accepts at most "
        f"{context_tokens - 1} prompt tokens (context window {context_tokens})",
    )
