"""Server-sent events decoded as they arrive, however the network cuts them."""

from __future__ import annotations

import pytest

from triskel.common.sse import SseDecoder


def decode_all(chunks: list[bytes]) -> list[list[str]]:
    decoder = SseDecoder()
    return [decoder.feed(chunk) for chunk in chunks]


def test_each_event_comes_out_when_its_blank_line_arrives() -> None:
    assert decode_all([b'data: {"a":1}\n\ndata: [DONE]\n\n']) == [['{"a":1}', "[DONE]"]]


def test_an_event_split_across_reads_comes_out_once_complete() -> None:
    chunks = [b"da", b"ta: hel", b"lo\n", b"\n", b"data: x\n\n"]
    assert decode_all(chunks) == [[], [], [], ["hello"], ["x"]]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: a\r\n\r\n"],
        # The second CR ends the event once the next read shows no LF follows it.
        [b"data: a\r\r", b"data: b"],
        # A CR at the end of a read may be half of a CRLF: no empty event in between.
        [b"data: a\r", b"\n\r", b"\n"],
    ],
)
def test_every_line_ending_works(chunks: list[bytes]) -> None:
    events = [event for batch in decode_all(chunks) for event in batch]
    assert events == ["a"]


def test_comments_and_other_fields_are_skipped_and_data_lines_joined() -> None:
    stream = b": keep-alive\nevent: message\nid: 3\ndata: one\ndata:two\n\n"
    # "data:two" has no space after the colon; only one leading space is ever removed.
    assert decode_all([stream]) == [["one\ntwo"]]


def test_a_blank_line_without_data_is_no_event() -> None:
    assert decode_all([b"\n\n: ping\n\n"]) == [[]]


def test_multibyte_text_split_inside_a_character_decodes_whole() -> None:
    encoded = "data: café\n\n".encode()
    cut = encoded.index("é".encode()) + 1  # between the two bytes of é
    assert decode_all([encoded[:cut], encoded[cut:]]) == [[], ["café"]]
