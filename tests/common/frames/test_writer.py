"""Frames sent in one turn of the event loop leave in one write, in order; a closing
transport gets nothing."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from triskel.common.frames.codec import FrameKind, FrameParser
from triskel.common.frames.writer import FrameWriter


class _Recorder:
    """The part of asyncio.Transport the writer uses, recording each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing


def _frames(data: bytes) -> list[tuple[int, FrameKind, bytes]]:
    return [tuple(frame) for frame in FrameParser().feed(data)]  # type: ignore[misc]


@pytest.mark.asyncio
async def test_one_turns_frames_leave_in_one_write() -> None:
    transport = _Recorder()
    writer = FrameWriter(cast(asyncio.Transport, transport))
    writer.send(1, FrameKind.REPLY, b"a")
    writer.send(2, FrameKind.REPLY, b"bb")
    writer.send(1, FrameKind.ERROR)
    assert transport.writes == []  # not before the turn ends
    await asyncio.sleep(0)
    assert len(transport.writes) == 1
    assert _frames(transport.writes[0]) == [
        (1, FrameKind.REPLY, b"a"),
        (2, FrameKind.REPLY, b"bb"),
        (1, FrameKind.ERROR, b""),
    ]
    writer.send(3, FrameKind.CALL, b"c")  # the next turn: a write of its own
    await asyncio.sleep(0)
    assert [_frames(w) for w in transport.writes[1:]] == [[(3, FrameKind.CALL, b"c")]]


@pytest.mark.asyncio
async def test_a_closing_transport_gets_no_write() -> None:
    transport = _Recorder()
    writer = FrameWriter(cast(asyncio.Transport, transport))
    writer.send(1, FrameKind.REPLY, b"a")
    transport.closing = True
    await asyncio.sleep(0)
    assert transport.writes == []
