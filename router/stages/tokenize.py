"""Turn the prompt into token ids and check it against the model's context window."""

from __future__ import annotations

from triskel.common.tokenizer import MockTokenizer
from triskel.router.stages.base import RequestContext
from triskel.router.types import ImagePart, RequestError


class TokenizeStage:
    name = "tokenize"

    def __init__(self, tokenizer: MockTokenizer) -> None:
        self._tokenizer = tokenizer

    async def run(self, ctx: RequestContext) -> None:
        images = iter(ctx.image_token_ids)
        token_ids: list[int] = []
        for segment in ctx.segments:
            if isinstance(segment, ImagePart):
                token_ids.extend(next(images))
            else:
                token_ids.extend(self._tokenizer.encode(segment))
        request = ctx.request
        input_field = "prompt" if request.messages is None else "messages"
        if not token_ids:
            raise RequestError(input_field, "encodes to zero tokens")
        context_tokens = ctx.model_pools.max_context_tokens
        room = context_tokens - len(token_ids)
        if room < 1:
            raise RequestError(
                input_field,
                f"is {len(token_ids)} tokens; the model {request.model} accepts at most "
                f"{context_tokens - 1} prompt tokens (context window {context_tokens})",
            )
        if request.max_tokens is not None and request.max_tokens > room:
            raise RequestError(
                "max_tokens",
                f"{request.max_tokens} + {len(token_ids)} prompt tokens exceeds the context "
                f"window of {context_tokens} tokens; at most {room} allowed for this prompt",
            )
        ctx.prompt_token_ids = token_ids
        # No max_tokens: generate until the model stops or the context is full (OpenAI's rule).
        ctx.max_tokens = request.max_tokens if request.max_tokens is not None else room
