"""The frame wire format of proto/triskel/v1/worker_frames.proto, both directions.

A connection starts with the client's PREFACE; then every frame is a 9-byte header
(payload length, stream id, kind) and its payload. `FrameParser` takes bytes as they
arrive and returns whole frames; a frame over the size limit, an unknown kind or a
wrong preface is a `FrameProtocolError` and the connection is closed by its owner.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from triskel.common.grpc_server import MAX_MESSAGE_BYTES

PREFACE = b"TRSKFRM1"
HEADER = struct.Struct("!IIB")
# The same bound as the gRPC service's messages: a prompt of a million token ids fits.
MAX_PAYLOAD_BYTES = MAX_MESSAGE_BYTES


class FrameKind(IntEnum):
    CALL = 1
    RESET = 2
    REPLY = 3
    ERROR = 4
    END = 5


# (stream id, kind, payload): a plain tuple, as a NamedTuple costs ~0.25 µs more a
# frame and a decode reads one per token.
Frame = tuple[int, FrameKind, bytes]


class FrameProtocolError(Exception):
    """The peer does not speak the frame protocol (or broke it)."""


def encode_frame(stream_id: int, kind: FrameKind, payload: bytes = b"") -> bytes:
    return HEADER.pack(len(payload), stream_id, kind) + payload


_KINDS = {int(kind): kind for kind in FrameKind}


class FrameParser:
    """Whole frames out of a byte stream; `expect_preface` for the server's side."""

    def __init__(self, *, expect_preface: bool = False) -> None:
        # The bytes of a frame not yet whole (or of the preface).
        self._buffer = bytearray()
        # How many buffered bytes let the next frame be read (its header, then all of it):
        # a long frame arriving in many reads is copied out once, when it is whole.
        self._wanted = 0
        self._awaiting_preface = expect_preface

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._buffer
        if buffer or self._awaiting_preface:
            buffer += data
            if self._awaiting_preface and not self._read_preface():
                return []
            if len(buffer) < self._wanted:
                return []
            data = bytes(buffer)
            buffer.clear()
        frames, offset, self._wanted = _split(data)
        if offset < len(data):
            buffer += memoryview(data)[offset:]
        return frames

    def _read_preface(self) -> bool:
        """Takes the preface off the buffer once it is all here (False before)."""
        buffer = self._buffer
        if len(buffer) < len(PREFACE):
            if not PREFACE.startswith(bytes(buffer)):
                raise FrameProtocolError("not a frame connection (wrong preface)")
            return False
        if buffer[: len(PREFACE)] != PREFACE:
            raise FrameProtocolError("not a frame connection (wrong preface)")
        del buffer[: len(PREFACE)]
        self._awaiting_preface = False
        return True


def _split(data: bytes) -> tuple[list[Frame], int, int]:
    """The whole frames at the start of `data`, where they end, and how many bytes from
    there the next frame needs before it can be read."""
    frames: list[Frame] = []
    offset, end, header_size = 0, len(data), HEADER.size
    unpack, kinds = HEADER.unpack_from, _KINDS
    while end - offset >= header_size:
        length, stream_id, kind = unpack(data, offset)
        if length > MAX_PAYLOAD_BYTES:
            raise FrameProtocolError(
                f"a frame of {length} bytes is over the limit of {MAX_PAYLOAD_BYTES}"
            )
        known = kinds.get(kind)
        if known is None:
            raise FrameProtocolError(f"unknown frame kind {kind}")
        start = offset + header_size
        stop = start + length
        if stop > end:
            return frames, offset, stop - offset
        frames.append((stream_id, known, data[start:stop]))
        offset = stop
    return frames, offset, header_size
