"""A stream's text chunks from the serialized-once template are byte for byte the
chunks built whole, whatever the text, the API shape and the model's name."""

from __future__ import annotations

import orjson
import pytest

from triskel.router.openai.responses import CompletionFormatter, TextChunks, sse_event

TEXTS = ["", " word", '"quoted" \\ back', "line\nbreak\t", "é ü 日本", "\x00", "🙂", "a" * 500]


# The last is the template's own stand-in for the text: it then builds each chunk whole.
MODELS = ["m", 'model "with" quotes', "has \x00triskel:text\x00 in it", "\x00triskel:text\x00"]


@pytest.mark.parametrize("is_chat", [False, True])
@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("model", MODELS)
def test_each_event_is_the_chunk_built_whole(
    is_chat: bool, include_usage: bool, model: str
) -> None:
    formatter = CompletionFormatter(is_chat, "r-1", model, 1_700_000_000, include_usage)
    chunks = TextChunks(formatter)
    for text in TEXTS:
        event = chunks.event(text)
        assert event == sse_event(formatter.text_chunk(text))
        body = orjson.loads(event.removeprefix(b"data: "))
        choice = body["choices"][0]
        assert (choice["delta"]["content"] if is_chat else choice["text"]) == text


def test_the_chunks_keep_the_formatter_they_were_made_for() -> None:
    formatter = CompletionFormatter(False, "r-2", "m", 1)
    assert TextChunks(formatter).formatter is formatter
