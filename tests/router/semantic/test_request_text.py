"""What signals read of a request: bounded texts, a token estimate, images, headers."""

from __future__ import annotations

import numpy as np

from triskel.router.semantic.request_text import bounded, signal_input
from triskel.router.semantic.signals.base import Vector
from triskel.router.types import ChatMessage, GenerationRequest, ImagePart, TextPart


def test_a_long_text_is_read_as_its_head_and_tail() -> None:
    text = "A" * 5000 + "B" * 5000
    cut = bounded(text, 100)
    # 75 characters of head, a newline, 24 of tail: exactly the bound.
    assert cut == "A" * 75 + "\n" + "B" * 24
    assert len(cut) == 100
    assert bounded("short", 100) == "short"


def test_chat_reads_the_last_user_message_and_the_whole_conversation() -> None:
    messages = (
        ChatMessage("system", (TextPart("be kind"),)),
        ChatMessage("user", (TextPart("first"),)),
        ChatMessage("assistant", (TextPart("answer"),)),
        ChatMessage("user", (TextPart("look"), ImagePart("http://x/i.png"), TextPart("here"))),
    )
    request = GenerationRequest("r", "auto", messages=messages, headers={"x-tenant": "t"})
    inputs = signal_input(request, 2000, None)
    assert inputs.text == "look here"
    assert (
        inputs.conversation_text
        == "system: be kind\nuser: first\nassistant: answer\nuser: look here"
    )
    assert inputs.num_images == 1
    assert inputs.headers == {"x-tenant": "t"}
    # 7 + 5 + 6 + 8 characters of text, about 4 a token, rounded up.
    assert inputs.prompt_tokens == 7


def test_a_megabyte_prompt_is_counted_whole_but_read_bounded() -> None:
    request = GenerationRequest("r", "auto", prompt="word " * 200_000)
    inputs = signal_input(request, 2000, None)
    assert inputs.prompt_tokens == 250_000
    assert len(inputs.text) == 2000 and len(inputs.conversation_text) == 2000


def test_token_ids_give_only_their_count() -> None:
    inputs = signal_input(GenerationRequest("r", "auto", prompt_token_ids=(1, 2, 3)), 2000, None)
    assert (inputs.text, inputs.prompt_tokens) == ("", 3)


def test_the_embedding_is_computed_once() -> None:
    calls: list[str] = []

    def embed(text: str) -> Vector:
        calls.append(text)
        return np.ones(4, dtype=np.float32)

    inputs = signal_input(GenerationRequest("r", "auto", prompt="hello"), 2000, embed)
    inputs.embedding()
    inputs.embedding()
    assert calls == ["hello"]
