"""The mock tokenizer: deterministic ids, BPE-like counts, exact decode of word ids."""

from __future__ import annotations

import pytest

from triskel.common.tokenizer import (
    CHAT_GENERATION_PROMPT,
    MockTokenizer,
    count_tokens,
    render_chat,
)

ENGLISH = (
    "Prefix caching lets an inference server reuse the attention keys and values computed "
    "for a shared prompt prefix, such as a long system prompt or the earlier turns of a "
    "conversation. When a new request arrives, the router compares its leading blocks with "
    "what each worker already holds, and sends it where the longest prefix is cached. This "
    "saves compute, shortens the time to the first token, and leaves more capacity for "
    "decoding other requests."
)


def test_encoding_is_deterministic_across_instances() -> None:
    assert MockTokenizer().encode(ENGLISH) == MockTokenizer().encode(ENGLISH)


def test_english_text_is_about_four_characters_a_token() -> None:
    ids = MockTokenizer().encode(ENGLISH)
    # 446 characters -> 130 tokens (3.4 chars/token): pieces hold at most 4 characters
    # including the leading space, close to a real BPE's ~4 on English prose.
    assert len(ENGLISH) == 446
    assert len(ids) == 130
    assert 3.0 <= len(ENGLISH) / len(ids) <= 5.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" the of and", [0, 1, 2]),  # fixed-vocabulary words keep their ids
        (" the", [0]),
        ("", []),
    ],
)
def test_fixed_vocabulary_ids(text: str, expected: list[int]) -> None:
    assert MockTokenizer().encode(text) == expected


def test_word_ids_decode_exactly() -> None:
    tokenizer = MockTokenizer()
    word_ids = list(range(tokenizer.num_word_tokens))
    text = tokenizer.decode(word_ids)
    assert "\N{REPLACEMENT CHARACTER}" not in text
    # Generated text re-encodes to the same ids, so a follow-up turn repeats them.
    assert tokenizer.encode(text) == word_ids
    assert tokenizer.decode([0, 1, 2]) == " the of and"


def test_ids_outside_the_fixed_vocabulary_decode_to_a_replacement_character() -> None:
    assert MockTokenizer().decode([100_000]) == "\N{REPLACEMENT CHARACTER}"


def test_every_id_is_below_vocab_size() -> None:
    tokenizer = MockTokenizer(vocab_size=1_000)
    assert max(tokenizer.encode(ENGLISH + " Zyzzyva quokka!")) < 1_000


def test_count_tokens_matches_encode() -> None:
    assert count_tokens(ENGLISH) == len(MockTokenizer().encode(ENGLISH))


def test_render_chat_opens_the_assistant_turn() -> None:
    prompt = render_chat([("system", "Be brief."), ("user", "Hi")])
    assert prompt == "<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n"
    assert prompt.endswith(CHAT_GENERATION_PROMPT)


@pytest.mark.parametrize(
    "piece",
    # The longest tokens: 8-character fixed words, and 4-character hashed pieces.
    [" between", " request", " xyzw", "    ", "!"],
)
def test_no_text_longer_than_max_prompt_chars_fits_in_the_tokens(piece: str) -> None:
    tokenizer = MockTokenizer()
    num_tokens = 100
    text = piece * num_tokens
    assert len(tokenizer.encode(text)) >= num_tokens
    # The bound is tight: text made of the longest token reaches it exactly.
    assert len(text) <= tokenizer.max_prompt_chars(num_tokens)
    assert tokenizer.max_prompt_chars(num_tokens) == len(" between" * num_tokens)


def test_a_long_text_split_lazily_encodes_as_its_parts_do() -> None:
    # Over the eager-split length the text is split piece by piece (the GIL is not held
    # for the whole split); the ids are those of its parts, each ending where no token
    # spans the cut (a punctuation mark).
    tokenizer = MockTokenizer()
    parts = [f"the {i} market, silver!  ocean\nxq{i * 7919}." for i in range(3_000)]
    text = "".join(parts)
    assert len(text) > 16_384
    expected = [token for part in parts for token in tokenizer.encode(part)]
    assert tokenizer.encode(text) == expected
