"""Chat prompt token ids: the same as the router computes, and as render_chat for plain text."""

from __future__ import annotations

import pytest

from triskel.common.chat_prompt import chat_prompt_token_ids
from triskel.common.tokenizer import CHAT_GENERATION_PROMPT, MockTokenizer, render_chat
from triskel.router.stages.prepare import chat_segments
from triskel.router.types import ChatMessage, TextPart

TOKENIZER = MockTokenizer()


def router_token_ids(messages: list[tuple[str, list[str]]]) -> list[int]:
    """What the router's prepare and tokenize stages make of text-only messages."""
    segments = chat_segments(
        [ChatMessage(role, tuple(TextPart(t) for t in parts)) for role, parts in messages]
    )
    return [t for segment in segments for t in TOKENIZER.encode(str(segment))]


@pytest.mark.parametrize(
    "messages",
    [
        [("user", ["hello"])],
        [("system", ["Be brief."]), ("user", ["What is a kernel?"]), ("assistant", ["A core."])],
        # Whitespace at a part's edges and several parts: where joining the text first
        # would merge whitespace tokens across pieces.
        [("user", [" leading", "trailing ", "\n\nnewlines\n"])],
    ],
)
def test_ids_match_the_routers(messages: list[tuple[str, list[str]]]) -> None:
    assert chat_prompt_token_ids(messages, TOKENIZER) == router_token_ids(messages)


def test_plain_text_matches_render_chat() -> None:
    messages = [("system", "Be brief."), ("user", "Name a river.")]
    turns = [(role, [text]) for role, text in messages]
    assert chat_prompt_token_ids(turns, TOKENIZER) == TOKENIZER.encode(render_chat(messages))


def test_without_the_generation_prompt() -> None:
    turns = [("user", ["hi"])]
    with_prompt = chat_prompt_token_ids(turns, TOKENIZER)
    without = chat_prompt_token_ids(turns, TOKENIZER, add_generation_prompt=False)
    assert with_prompt == without + TOKENIZER.encode(CHAT_GENERATION_PROMPT)
