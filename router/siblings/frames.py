"""What siblings tell each other, as length-prefixed frames on a stream (pure code).

    frame   = length (u32, little-endian) · kind (1 byte) · body
    HELLO   = sender index (u16)                         first frame of a connection
    LOAD    = JSON {"worker": id, "counts": [requests, prefill tokens, decode blocks]}
    PICK    = header length (u32) · JSON header · token ids (i64 each) · block hashes (u64)
    METRICS = the sender's Prometheus exposition, UTF-8             to the first process

A load share is the sender's whole share on one worker, not a delta: a frame lost
while a sibling restarts is corrected by the next one. Token ids and block hashes
travel as raw arrays: a long prompt costs a copy, not a JSON list.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.types import SchedulingRequest, Stage
from triskel.router.state.protocols import LoadCounts

HELLO, LOAD, PICK, METRICS = b"H", b"L", b"P", b"M"
LENGTH = struct.Struct("<I")
_INDEX = struct.Struct("<H")
# A frame above this is refused as corrupt (a prompt of 4M tokens is 32 MiB of ids).
MAX_FRAME_BYTES = 64 * 1024 * 1024


class FrameError(ValueError):
    """A frame that is not one of ours (truncated, unknown kind, malformed body)."""


@dataclass(frozen=True, slots=True)
class LoadShare:
    """The sender's work in flight on `worker_id`, all of it."""

    worker_id: str
    counts: LoadCounts


@dataclass(frozen=True, slots=True)
class SharedPick:
    """A stage of a request sent to `worker_id`: what the pick observers learn from."""

    request_id: str
    model: str
    stage: Stage
    worker_id: str
    token_ids: Sequence[int]
    block_hashes: Sequence[BlockHash]
    max_tokens: int
    headers: Mapping[str, str]

    @classmethod
    def of(cls, request: SchedulingRequest, worker_id: str) -> SharedPick:
        """What of `request`, sent to `worker_id`, a sibling learns from."""
        return cls(
            request.request_id,
            request.model,
            request.stage,
            worker_id,
            request.token_ids,
            request.block_hashes,
            request.max_tokens,
            request.headers,
        )

    def request(self) -> SchedulingRequest:
        """The pick's request as the sibling's pick observers read it."""
        return SchedulingRequest(
            self.request_id,
            self.model,
            self.stage,
            self.token_ids,
            self.block_hashes,
            self.max_tokens,
            self.headers,
        )


def hello(index: int) -> bytes:
    return _framed(HELLO + _INDEX.pack(index))


def load_share(share: LoadShare) -> bytes:
    counts = share.counts
    body = {
        "worker": share.worker_id,
        "counts": [counts.num_requests, counts.num_prefill_tokens, counts.num_decode_blocks],
    }
    return _framed(LOAD + orjson.dumps(body))


def shared_pick(pick: SharedPick) -> bytes:
    header = orjson.dumps(
        {
            "request": pick.request_id,
            "model": pick.model,
            "stage": pick.stage.value,
            "worker": pick.worker_id,
            "maxTokens": pick.max_tokens,
            "headers": dict(pick.headers),
            "tokens": len(pick.token_ids),
            "blocks": len(pick.block_hashes),
        }
    )
    tokens = np.asarray(pick.token_ids, dtype="<i8").tobytes()
    blocks = np.asarray(pick.block_hashes, dtype="<u8").tobytes()
    return _framed(PICK + LENGTH.pack(len(header)) + header + tokens + blocks)


def metrics(exposition: bytes) -> bytes:
    return _framed(METRICS + exposition)


def parse_metrics(body: bytes) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError as error:
        raise FrameError(f"metrics: {error}") from None


def parse_hello(body: bytes) -> int:
    if len(body) != _INDEX.size:
        raise FrameError(f"hello: {len(body)} bytes, want {_INDEX.size}")
    (index,) = _INDEX.unpack(body)
    return int(index)


def parse_load(body: bytes) -> LoadShare:
    data = _json(body)
    worker, counts = data.get("worker"), data.get("counts")
    if not isinstance(worker, str) or not isinstance(counts, list) or not _ints(counts, 3):
        raise FrameError("load: want a worker id and three counts")
    return LoadShare(worker, LoadCounts(*counts))


def parse_pick(body: bytes) -> SharedPick:
    if len(body) < LENGTH.size:
        raise FrameError("pick: no header length")
    (header_length,) = LENGTH.unpack_from(body)
    start = LENGTH.size + header_length
    header = _json(body[LENGTH.size : start])
    num_tokens, num_blocks = header.get("tokens"), header.get("blocks")
    if not isinstance(num_tokens, int) or not isinstance(num_blocks, int):
        raise FrameError("pick: want token and block counts")
    if len(body) != start + 8 * (num_tokens + num_blocks):
        raise FrameError(f"pick: {len(body) - start} array bytes for {num_tokens} + {num_blocks}")
    tokens = np.frombuffer(body, dtype="<i8", count=num_tokens, offset=start)
    blocks = np.frombuffer(body, dtype="<u8", count=num_blocks, offset=start + 8 * num_tokens)
    try:
        return SharedPick(
            request_id=str(header["request"]),
            model=str(header["model"]),
            stage=Stage(header["stage"]),
            worker_id=str(header["worker"]),
            token_ids=tokens.tolist(),
            block_hashes=[BlockHash(h) for h in blocks.tolist()],
            max_tokens=int(header["maxTokens"]),
            headers={str(k): str(v) for k, v in dict(header["headers"]).items()},
        )
    except (KeyError, TypeError, ValueError) as error:
        raise FrameError(f"pick: {error!r}") from None


def _framed(payload: bytes) -> bytes:
    return LENGTH.pack(len(payload)) + payload


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise FrameError(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise FrameError("not a JSON object")
    return data


def _ints(values: list[Any], length: int) -> bool:
    return len(values) == length and all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    )
