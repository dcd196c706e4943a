"""A request's prompt as token ids, and its max_tokens when the client gave none. Pure.

Text is encoded with the mock tokenizer and chat messages with the mock chat template
(`triskel.common.chat_prompt`), exactly as Triskel's router does, so the router's
prefix hashes and the worker's cache agree on every token.
"""

from __future__ import annotations

from triskel.common.chat_prompt import chat_prompt_token_ids
from triskel.common.tokenizer import MockTokenizer
from triskel.workers.api import WorkerDescription
from triskel.workers.openai_http.errors import bad_request
from triskel.workers.openai_http.requests import GenerateRequest, PromptInput

# vLLM's (and OpenAI's) default for the legacy completions endpoint.
COMPLETIONS_DEFAULT_MAX_TOKENS = 16


def prompt_token_ids(
    prompt: PromptInput, tokenizer: MockTokenizer, add_generation_prompt: bool = True
) -> list[int]:
    """The prompt's ids; ApiError (400) for ids outside the vocabulary or an empty prompt."""
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


def max_tokens_for(
    request: GenerateRequest, num_prompt_tokens: int, description: WorkerDescription
) -> int:
    """The request's max_tokens, or vLLM's default: 16 for completions, and for chat as
    many as fit after the prompt (in the context window and in this worker's KV pool)."""
    if request.max_tokens is not None:
        return request.max_tokens  # the engine refuses a prompt + max_tokens that cannot fit
    if not request.is_chat:
        return COMPLETIONS_DEFAULT_MAX_TOKENS
    capacity_tokens = min(
        description.max_context_tokens, description.num_kv_blocks * description.block_size_tokens
    )
    room = capacity_tokens - num_prompt_tokens
    if room < 1:
        raise bad_request(
            request.prompt.field_name,
            f"is {num_prompt_tokens} tokens; this worker fits at most {capacity_tokens - 1} "
            f"prompt tokens (context window {description.max_context_tokens}, KV pool "
            f"{description.num_kv_blocks * description.block_size_tokens} tokens)",
        )
    return room
