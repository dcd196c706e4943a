"""The frame wire format: whole frames out of bytes however the network cuts them, and
a clear FrameProtocolError for a peer that does not speak the protocol."""

from __future__ import annotations

import random

import pytest

from triskel.common.frames.codec import (
    HEADER,
    MAX_PAYLOAD_BYTES,
    PREFACE,
    Frame,
    FrameKind,
    FrameParser,
    FrameProtocolError,
    encode_frame,
)


def feed_byte_by_byte(parser: FrameParser, data: bytes) -> list[list[Frame]]:
    """What each one-byte feed returned, in order."""
    return [parser.feed(data[i : i + 1]) for i in range(len(data))]


def test_the_header_is_nine_bytes_big_endian() -> None:
    # length 3, stream 258, kind REPLY (3): the layout worker_frames.proto describes.
    assert encode_frame(258, FrameKind.REPLY, b"abc") == (
        b"\x00\x00\x00\x03" + b"\x00\x00\x01\x02" + b"\x03" + b"abc"
    )
    assert HEADER.size == 9


def test_a_frame_fed_byte_by_byte_comes_out_whole_once_its_last_byte_arrives() -> None:
    payload = bytes(range(200))
    wire = encode_frame(7, FrameKind.CALL, payload) + encode_frame(8, FrameKind.RESET)
    returned = feed_byte_by_byte(FrameParser(), wire)
    first_end = HEADER.size + len(payload)
    # Nothing until the first frame's last byte; the empty RESET with its header's last byte.
    assert [i for i, frames in enumerate(returned) if frames] == [first_end - 1, len(wire) - 1]
    assert returned[first_end - 1] == [(7, FrameKind.CALL, payload)]
    assert returned[-1] == [(8, FrameKind.RESET, b"")]


def test_several_frames_in_one_chunk_come_out_in_order() -> None:
    wire = (
        encode_frame(1, FrameKind.REPLY, b"one")
        + encode_frame(3, FrameKind.ERROR, b"three")
        + encode_frame(2, FrameKind.REPLY, b"")
        + encode_frame(1, FrameKind.REPLY, b"one again")
    )
    assert FrameParser().feed(wire) == [
        (1, FrameKind.REPLY, b"one"),
        (3, FrameKind.ERROR, b"three"),
        (2, FrameKind.REPLY, b""),
        (1, FrameKind.REPLY, b"one again"),
    ]


def test_a_chunk_ending_mid_frame_keeps_the_rest_for_the_next_feed() -> None:
    wire = encode_frame(1, FrameKind.REPLY, b"first") + encode_frame(2, FrameKind.REPLY, b"second")
    cut = len(wire) - 4  # inside the second frame's payload
    parser = FrameParser()
    assert parser.feed(wire[:cut]) == [(1, FrameKind.REPLY, b"first")]
    assert parser.feed(wire[cut:]) == [(2, FrameKind.REPLY, b"second")]
    assert parser.feed(b"") == []


def test_a_server_parser_accepts_the_preface_split_byte_by_byte() -> None:
    frame = encode_frame(5, FrameKind.CALL, b"call")
    returned = feed_byte_by_byte(FrameParser(expect_preface=True), PREFACE + frame)
    assert [frames for frames in returned if frames] == [[(5, FrameKind.CALL, b"call")]]
    assert returned[-1] == [(5, FrameKind.CALL, b"call")]


def test_the_preface_and_frames_may_arrive_in_one_chunk() -> None:
    parser = FrameParser(expect_preface=True)
    wire = PREFACE + encode_frame(1, FrameKind.CALL, b"a") + encode_frame(1, FrameKind.RESET)
    assert parser.feed(wire) == [(1, FrameKind.CALL, b"a"), (1, FrameKind.RESET, b"")]


def test_a_wrong_preface_is_refused_at_its_first_differing_byte() -> None:
    # An HTTP client on the frame port: "G" already differs from "T".
    parser = FrameParser(expect_preface=True)
    with pytest.raises(FrameProtocolError, match="wrong preface"):
        parser.feed(b"G")


def test_a_preface_differing_late_is_refused_before_it_is_complete() -> None:
    parser = FrameParser(expect_preface=True)
    # "TRSKFRM" is right so far; the 8th byte "2" is not "1" and fails at once.
    assert feed_byte_by_byte(parser, PREFACE[:-1]) == [[]] * (len(PREFACE) - 1)
    with pytest.raises(FrameProtocolError, match="wrong preface"):
        parser.feed(b"2")


def test_an_http_request_is_refused_as_a_preface_in_one_chunk() -> None:
    with pytest.raises(FrameProtocolError, match="wrong preface"):
        FrameParser(expect_preface=True).feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_a_client_parser_takes_no_preface() -> None:
    # The worker sends none: a client parser reads frames from the first byte.
    frame = encode_frame(1, FrameKind.REPLY, b"r")
    assert FrameParser().feed(frame) == [(1, FrameKind.REPLY, b"r")]


def test_a_header_over_the_limit_fails_before_its_payload_arrives() -> None:
    header = HEADER.pack(MAX_PAYLOAD_BYTES + 1, 1, FrameKind.CALL)
    with pytest.raises(FrameProtocolError, match=f"over the limit of {MAX_PAYLOAD_BYTES}"):
        FrameParser().feed(header)


def test_a_header_at_the_limit_waits_for_its_payload() -> None:
    # Exactly the limit is allowed: the parser waits for the payload instead of failing.
    header = HEADER.pack(MAX_PAYLOAD_BYTES, 1, FrameKind.CALL)
    assert FrameParser().feed(header) == []


@pytest.mark.parametrize("kind", [0, 6, 255])
def test_an_unknown_kind_fails(kind: int) -> None:
    # 0 is no kind, 5 the first after ERROR, 255 the largest a byte holds.
    with pytest.raises(FrameProtocolError, match=f"unknown frame kind {kind}"):
        FrameParser().feed(HEADER.pack(0, 1, kind))


def test_an_unknown_kind_fails_before_its_payload_arrives() -> None:
    with pytest.raises(FrameProtocolError, match="unknown frame kind 9"):
        FrameParser().feed(HEADER.pack(100, 1, 9))


@pytest.mark.parametrize("kind", list(FrameKind))
def test_an_empty_payload_round_trips(kind: FrameKind) -> None:
    wire = encode_frame(4_294_967_295, kind)  # the largest stream id a uint32 holds
    assert len(wire) == HEADER.size
    [frame] = FrameParser().feed(wire)
    assert frame == (4_294_967_295, kind, b"")
    assert frame[1] is kind  # the enum member, not a bare int


def test_a_long_frame_in_many_reads_comes_out_whole_with_the_frames_after_it() -> None:
    payload = bytes(range(256)) * 400  # ~100 KB, as a long prompt's CALL
    wire = encode_frame(1, FrameKind.CALL, payload) + encode_frame(2, FrameKind.REPLY, b"next")
    parser = FrameParser()
    returned = [parser.feed(wire[i : i + 4096]) for i in range(0, len(wire), 4096)]
    assert [frames for frames in returned if frames] == [
        [(1, FrameKind.CALL, payload), (2, FrameKind.REPLY, b"next")]
    ]


@pytest.mark.parametrize("seed", range(20))
def test_frames_cut_anywhere_come_out_the_same(seed: int) -> None:
    rng = random.Random(seed)
    frames = [
        (rng.randrange(1, 2**32), rng.choice(list(FrameKind)), rng.randbytes(rng.randrange(40)))
        for _ in range(30)
    ]
    preface = rng.random() < 0.5
    wire = (PREFACE if preface else b"") + b"".join(encode_frame(*frame) for frame in frames)
    cuts = sorted(rng.sample(range(1, len(wire)), 25))
    parser = FrameParser(expect_preface=preface)
    out: list[Frame] = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        out += parser.feed(wire[start:end])
    assert out == frames
