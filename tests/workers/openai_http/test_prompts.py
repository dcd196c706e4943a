"""Prompt token ids agree with the mock tokenizer and the mock chat template."""

from __future__ import annotations

import logging

import pytest

from triskel.common.api import Role
from triskel.common.tokenizer import MockTokenizer, render_chat
from triskel.workers.api import WorkerDescription
from triskel.workers.openai_http.errors import ApiError
from triskel.workers.openai_http.prompts import (
    COMPLETIONS_DEFAULT_MAX_TOKENS,
    max_tokens_for,
    prompt_token_ids,
)
from triskel.workers.openai_http.requests import GenerateRequest, PromptInput

TOKENIZER = MockTokenizer()
# A 1,000-token context, and a KV pool of 50 blocks of 16 = 800 tokens: the pool binds.
DESCRIPTION = WorkerDescription("w", Role.UNIFIED, "m", "p", 16, 1000, "tcp", 50, "")


def test_text_and_chat_give_the_tokenizers_ids() -> None:
    text = "The river runs under the stone bridge."
    assert prompt_token_ids(PromptInput(text=text), TOKENIZER, 1000) == TOKENIZER.encode(text)
    messages = (("system", ("Be brief.",)), ("user", ("What is a kernel?",)))
    expected = TOKENIZER.encode(render_chat([(role, parts[0]) for role, parts in messages]))
    assert prompt_token_ids(PromptInput(messages=messages), TOKENIZER, 1000) == expected


def test_token_ids_are_taken_as_given_within_the_vocabulary() -> None:
    assert prompt_token_ids(PromptInput(token_ids=(1, 2, 3)), TOKENIZER, 1000) == [1, 2, 3]
    too_big = TOKENIZER.vocab_size
    with pytest.raises(ApiError, match=r"prompt\[1\]: token id 128256 is outside"):
        prompt_token_ids(PromptInput(token_ids=(1, too_big)), TOKENIZER, 1000)


def test_a_prompt_of_zero_tokens_is_refused() -> None:
    with pytest.raises(ApiError, match="prompt: encodes to zero tokens"):
        prompt_token_ids(PromptInput(text=""), TOKENIZER, 1000)


@pytest.mark.parametrize(
    ("prompt", "fragment"),
    [
        # A 1,000-token window: 999 prompt tokens of at most 8 characters each.
        (PromptInput(text="x" * 7993), "is 7993 characters"),
        (PromptInput(messages=(("user", ("x" * 7000, "y" * 993)),)), "is 7993 characters"),
        (PromptInput(token_ids=(1,) * 1000), "is 1000 tokens"),
    ],
)
def test_a_prompt_too_long_for_the_window_is_refused_before_encoding(
    prompt: PromptInput, fragment: str
) -> None:
    with pytest.raises(ApiError, match=fragment) as raised:
        prompt_token_ids(prompt, TOKENIZER, 1000)
    assert raised.value.param == prompt.field_name


@pytest.mark.parametrize(
    ("is_chat", "max_tokens", "num_prompt_tokens", "expected"),
    [
        (False, 5, 10, 5),
        # vLLM's completions default.
        (False, None, 10, COMPLETIONS_DEFAULT_MAX_TOKENS),
        # vLLM's chat default: all that fits after the prompt, here the 800-token pool.
        (True, None, 10, 790),
    ],
)
def test_max_tokens_defaults_like_vllm(
    is_chat: bool, max_tokens: int | None, num_prompt_tokens: int, expected: int
) -> None:
    request = GenerateRequest(is_chat, PromptInput(text="x"), max_tokens=max_tokens)
    assert max_tokens_for(request, num_prompt_tokens, DESCRIPTION) == expected


def test_a_chat_prompt_that_fills_the_kv_pool_is_refused_without_its_size(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # It read "this worker fits at most 799 prompt tokens (..., KV pool 800 tokens)": the
    # deployment's capacity, told to anyone. The worker's log keeps the figure.
    request = GenerateRequest(True, PromptInput(messages=(("user", ("x",)),)))
    logger = "triskel.workers.openai_http.prompts"
    with caplog.at_level(logging.INFO, logger=logger), pytest.raises(ApiError) as raised:
        max_tokens_for(request, 801, DESCRIPTION)
    assert raised.value.message == (
        "messages: is 801 tokens, too long for this deployment's KV cache; send a shorter prompt"
    )
    assert "the KV pool holds 800 tokens" in caplog.text


def test_a_chat_prompt_that_fills_the_context_window_is_told_the_window() -> None:
    # The window is the model's, public (it is in /v1/models): the client is told it.
    roomy_pool = WorkerDescription("w", Role.UNIFIED, "m", "p", 16, 1000, "tcp", 500, "")
    request = GenerateRequest(True, PromptInput(messages=(("user", ("x",)),)))
    with pytest.raises(ApiError) as raised:
        max_tokens_for(request, 1000, roomy_pool)
    assert raised.value.message == (
        "messages: is 1000 tokens; this worker fits at most 999 prompt tokens (context window 1000)"
    )
