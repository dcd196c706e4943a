"""The frame wire format of proto/triskel/v1/worker_frames.proto, both directions.

A connection starts with the client's PREFACE; then every frame is a 9-byte header
(payload length, stream id, kind) and its payload. `FrameParser` takes bytes as they
arrive and returns whole frames; a frame over the size limit, an unknown kind or a
wrong preface is a `FrameProtocolError` and the connection is closed by its owner.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

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


class Frame(NamedTuple):
    stream_id: int
    kind: FrameKind
    payload: bytes


class FrameProtocolError(Exception):
    """The peer does not speak the frame protocol (or broke it)."""


def encode_frame(stream_id: int, kind: FrameKind, payload: bytes = b"") -> bytes:
    return HEADER.pack(len(payload), stream_id, kind) + payload


_KINDS = {int(kind): kind for kind in FrameKind}


class FrameParser:
    """Whole frames out of a byte stream; `expect_preface` for the server's side."""

    def __init__(self, *, expect_preface: bool = False) -> None:
        self._buffer = bytearray()
        self._awaiting_preface = expect_preface

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._buffer
        buffer += data
        if self._awaiting_preface:
            if len(buffer) < len(PREFACE):
                if not PREFACE.startswith(bytes(buffer)):
                    raise FrameProtocolError("not a frame connection (wrong preface)")
                return []
            if buffer[: len(PREFACE)] != PREFACE:
                raise FrameProtocolError("not a frame connection (wrong preface)")
            del buffer[: len(PREFACE)]
            self._awaiting_preface = False
        frames: list[Frame] = []
        offset, end, header_size = 0, len(buffer), HEADER.size
        while end - offset >= header_size:
            length, stream_id, kind = HEADER.unpack_from(buffer, offset)
            if length > MAX_PAYLOAD_BYTES:
                raise FrameProtocolError(
                    f"a frame of {length} bytes is over the limit of {MAX_PAYLOAD_BYTES}"
                )
            known = _KINDS.get(kind)
            if known is None:
                raise FrameProtocolError(f"unknown frame kind {kind}")
            start = offset + header_size
            if end - start < length:
                break
            frames.append(Frame(stream_id, known, bytes(buffer[start : start + length])))
            offset = start + length
        if offset:
            del buffer[:offset]
        return frames
