"""A request's prompt as token ids, and its max_tokens when the client gave none. Pure,
but for `encode_prompt`, which runs the encoding of a long prompt in a thread, and the
log line of a chat prompt too long for the KV pool.

Text is encoded with the mock tokenizer and chat messages with the mock chat template
(`triskel.common.chat_prompt`), exactly as Triskel's router does, so the router's
prefix hashes and the worker's cache agree on every token.
"""

from __future__ import annotations

import logging

from triskel.common.chat_prompt import chat_prompt_token_ids
from triskel.common.off_loop import INLINE_PROMPT_CHARS, off_loop_if_large
from triskel.common.tokenizer import MockTokenizer
from triskel.workers.api import WorkerDescription
from triskel.workers.openai_http.errors import bad_request
from triskel.workers.openai_http.requests import GenerateRequest, PromptInput

_log = logging.getLogger(__name__)

# vLLM's (and OpenAI's) default for the legacy completions endpoint.
COMPLETIONS_DEFAULT_MAX_TOKENS = 16


async def encode_prompt(
    prompt: PromptInput,
    tokenizer: MockTokenizer,
    max_context_tokens: int,
    add_generation_prompt: bool = True,
) -> list[int]:
    """`prompt_token_ids`, in a thread when the prompt is long: the loop keeps serving."""
    return await off_loop_if_large(
        prompt_size(prompt),
        INLINE_PROMPT_CHARS,
        lambda: prompt_token_ids(prompt, tokenizer, max_context_tokens, add_generation_prompt),
    )


def prompt_size(prompt: PromptInput) -> int:
    """What encoding the prompt costs: its characters, or the ids to check."""
    if prompt.token_ids is not None:
        return len(prompt.token_ids)
    if prompt.messages is not None:
        return sum(len(text) for _, parts in prompt.messages for text in parts)
    return len(prompt.text or "")


def prompt_token_ids(
    prompt: PromptInput,
    tokenizer: MockTokenizer,
    max_context_tokens: int,
    add_generation_prompt: bool = True,
) -> list[int]:
    """The prompt's ids; ApiError (400) for ids outside the vocabulary, an empty prompt,
    or one too long for `max_context_tokens`, found by its length before any encoding."""
    check_prompt_length(prompt, tokenizer, max_context_tokens)
    if prompt.token_ids is not None:
        for position, token_id in enumerate(prompt.token_ids):
            if token_id >= tokenizer.vocab_size:
                raise bad_request(
                    f"prompt[{position}]",
                    f"token id {token_id} is outside the vocabulary of "
                    f"{tokenizer.vocab_size} tokens",
                )
        return list(prompt.token_ids)
    if prompt.messages is not None:
        token_ids = chat_prompt_token_ids(prompt.messages, tokenizer, add_generation_prompt)
    else:
        token_ids = tokenizer.encode(prompt.text or "")
    if not token_ids:
        raise bad_request(prompt.field_name, "encodes to zero tokens")
    return token_ids


def check_prompt_length(
    prompt: PromptInput, tokenizer: MockTokenizer, max_context_tokens: int
) -> None:
    """ApiError (400) for a prompt that cannot fit in the context window whatever it
    encodes to: more ids than the window, or more text than its tokens can stand for."""
    max_prompt_tokens = max_context_tokens - 1
    window = f"(context window {max_context_tokens})"
    if prompt.token_ids is not None:
        if len(prompt.token_ids) > max_prompt_tokens:
            raise bad_request(
                prompt.field_name,
                f"is {len(prompt.token_ids)} tokens; this worker accepts at most "
                f"{max_prompt_tokens} prompt tokens {window}",
            )
        return
    num_chars = prompt_size(prompt)
    max_chars = tokenizer.max_prompt_chars(max_prompt_tokens)
    if num_chars > max_chars:
        raise bad_request(
            prompt.field_name,
            f"is {num_chars} characters; this worker accepts at most {max_prompt_tokens} "
            f"prompt tokens {window}, and no text over {max_chars} characters fits in them",
        )


def max_tokens_for(
    request: GenerateRequest, num_prompt_tokens: int, description: WorkerDescription
) -> int:
    """The request's max_tokens, or vLLM's default: 16 for completions, and for chat as
    many as fit after the prompt (in the context window and in this worker's KV pool)."""
    if request.max_tokens is not None:
        return request.max_tokens  # the engine refuses a prompt + max_tokens that cannot fit
    if not request.is_chat:
        return COMPLETIONS_DEFAULT_MAX_TOKENS
    window_tokens = description.max_context_tokens
    pool_tokens = description.num_kv_blocks * description.block_size_tokens
    room = min(window_tokens, pool_tokens) - num_prompt_tokens
    if room >= 1:
        return room
    field = request.prompt.field_name
    if pool_tokens < window_tokens:
        # The KV pool's size is the deployment's own business: the client learns what to
        # do, the worker's log the figures.
        _log.info(
            "refused a chat prompt of %d tokens: the KV pool holds %d tokens",
            num_prompt_tokens,
            pool_tokens,
        )
        raise bad_request(
            field,
            f"is {num_prompt_tokens} tokens, too long for this deployment's KV cache; "
            "send a shorter prompt",
        )
    raise bad_request(
        field,
        f"is {num_prompt_tokens} tokens; this worker fits at most {window_tokens - 1} prompt "
        f"tokens (context window {window_tokens})",
    )
