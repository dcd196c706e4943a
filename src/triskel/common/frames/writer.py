"""Frames sent in one turn of the event loop leave in one write.

A decode sends a frame per engine step per request, and a busy router opens several
calls per turn: a write (a syscall here, a wake-up of the peer's reader there) per
frame would cost more than the frames. Gathered until the end of the turn, they leave
together; nothing waits longer than the turn it was sent in.
"""

from __future__ import annotations

import asyncio

from triskel.common.frames.codec import FrameKind, encode_frame


class FrameWriter:
    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []

    def send(self, stream_id: int, kind: FrameKind, payload: bytes = b"") -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(encode_frame(stream_id, kind, payload))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if not self._transport.is_closing():
            self._transport.write(b"".join(pending))
