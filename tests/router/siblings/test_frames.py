"""Sibling frames: each kind round-trips, and what is not ours is refused by name."""

from __future__ import annotations

import pytest

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.types import Stage
from triskel.router.siblings import frames
from triskel.router.siblings.frames import FrameError, LoadShare, SharedPick
from triskel.router.state.protocols import LoadCounts


def body(frame: bytes) -> tuple[bytes, bytes]:
    (length,) = frames.LENGTH.unpack_from(frame)
    assert length == len(frame) - frames.LENGTH.size
    return frame[4:5], frame[5:]


def test_a_pick_round_trips_with_64_bit_hashes_and_long_prompts() -> None:
    pick = SharedPick(
        request_id="r",
        model="m",
        stage=Stage.DECODE,
        worker_id="w",
        token_ids=list(range(100_000)),
        block_hashes=[BlockHash(0), BlockHash(2**64 - 1), BlockHash(2**63)],
        max_tokens=7,
        headers={"x-session-id": "abc", "x-priority": "2"},
    )
    kind, data = body(frames.shared_pick(pick))
    assert kind == frames.PICK
    assert frames.parse_pick(data) == pick


def test_a_load_share_and_a_hello_round_trip() -> None:
    share = LoadShare("worker-1", LoadCounts(2, -1, 30))
    kind, data = body(frames.load_share(share))
    assert kind == frames.LOAD and frames.parse_load(data) == share
    kind, data = body(frames.hello(255))
    assert kind == frames.HELLO and frames.parse_hello(data) == 255


@pytest.mark.parametrize(
    ("parse", "data", "message"),
    [
        (frames.parse_load, b"[1]", "not a JSON object"),
        (frames.parse_load, b"{]", "not JSON"),
        (frames.parse_load, b'{"worker": "w", "counts": [1, 2]}', "three counts"),
        (frames.parse_load, b'{"worker": "w", "counts": [1, 2, true]}', "three counts"),
        (frames.parse_pick, b"\x01", "no header length"),
        (frames.parse_hello, b"\x01", "hello: 1 bytes"),
    ],
)
def test_malformed_bodies_are_refused(parse: object, data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        parse(data)  # type: ignore[operator]


def test_a_pick_whose_arrays_do_not_match_its_header_is_refused() -> None:
    pick = SharedPick("r", "m", Stage.PREFILL, "w", [1, 2], [BlockHash(3)], 1, {})
    _, data = body(frames.shared_pick(pick))
    with pytest.raises(FrameError, match="array bytes"):
        frames.parse_pick(data[:-8])
    header = data.replace(b'"stage":"prefill"', b'"stage":"prefilX"')
    with pytest.raises(FrameError, match="pick:"):
        frames.parse_pick(header)
