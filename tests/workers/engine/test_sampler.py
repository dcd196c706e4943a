"""Deterministic outputs: same prompt, same tokens, same natural length."""

from __future__ import annotations

from triskel.common.tokenizer import MockTokenizer
from triskel.workers.engine.sampler import (
    MAX_NATURAL_LENGTH_TOKENS,
    MIN_NATURAL_LENGTH_TOKENS,
    natural_length_tokens,
    output_token_id,
    prompt_seed,
    token_for_seed,
)


def test_outputs_are_pinned() -> None:
    # Unified and split workers (possibly of different versions) must agree on every
    # token: a change to the seeding or folding shows up here first.
    assert [output_token_id([1, 2, 3], index) for index in range(5)] == [100, 77, 169, 99, 71]
    assert natural_length_tokens(prompt_seed([1, 2, 3])) == 127


def test_output_token_id_is_token_for_seed_of_the_prompt() -> None:
    prompt = list(range(50))
    seed = prompt_seed(prompt)
    assert [output_token_id(prompt, i) for i in range(20)] == [
        token_for_seed(seed, i) for i in range(20)
    ]


def test_outputs_decode_to_words() -> None:
    tokenizer = MockTokenizer()
    seed = prompt_seed([7, 8, 9])
    tokens = [token_for_seed(seed, index) for index in range(500)]
    assert all(0 <= token < tokenizer.num_word_tokens for token in tokens)
    assert "\N{REPLACEMENT CHARACTER}" not in tokenizer.decode(tokens)


def test_different_prompts_give_different_streams() -> None:
    first = [output_token_id([1, 2, 3], index) for index in range(10)]
    second = [output_token_id([1, 2, 4], index) for index in range(10)]
    assert first != second


def test_natural_lengths_span_the_range() -> None:
    lengths = [natural_length_tokens(prompt_seed([index])) for index in range(1000)]
    assert min(lengths) >= MIN_NATURAL_LENGTH_TOKENS
    assert max(lengths) <= MAX_NATURAL_LENGTH_TOKENS
    # Log-uniform over 16..512: the median sits near the geometric mean, sqrt(16*512) = 90.5.
    assert 70 <= sorted(lengths)[500] <= 115
    assert min(lengths) < 20 and max(lengths) > 480
