"""A cached answer with everything needed to find it again, and its byte form.

An entry's id derives from its exact hash, so the same prompt stored twice (by one
replica or two) is one entry, replaced; the id is an integer because the vector
index takes integer keys. Bytes are orjson, vectors as base64 float32, with a format
version so that a router reading an entry it does not understand treats it as absent.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from triskel.router.semantic_cache.guards import Guard
from triskel.router.semantic_cache.index import Vector
from triskel.router.semantic_cache.keys import Partition

FORMAT_VERSION = 1
# Finish reasons of a complete answer; anything else (an error, a cancelled stream)
# is not worth replaying.
COMPLETE_FINISH_REASONS = frozenset({"stop", "length"})
_ID_MASK = (1 << 63) - 1


class EntryFormatError(ValueError):
    """Bytes that are not an entry this router can read."""


def entry_id_for(exact_hash: str) -> int:
    """63 bits of the exact hash: fits every integer key type, collisions negligible."""
    return int(exact_hash[:16], 16) & _ID_MASK


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A complete answer as the stream sent it."""

    pieces: tuple[str, ...]  # the streamed text chunks, in order
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass(frozen=True, slots=True)
class CacheEntry:
    entry_id: int
    partition: Partition
    context_hash: str
    exact_hash: str
    # The query's embedding as float32 bytes; empty (and guard None) for an entry that
    # only matches exactly (a token-id request).
    vector_bytes: bytes
    guard: Guard | None
    answer: CachedAnswer
    stored_at_s: float  # wall clock: entries move between routers
    expires_at_s: float

    @property
    def category(self) -> str:
        return self.partition.category

    @property
    def is_semantic(self) -> bool:
        return bool(self.vector_bytes) and self.guard is not None

    def vector(self) -> Vector:
        return np.frombuffer(self.vector_bytes, dtype=np.float32)

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "id": self.entry_id,
            "partition": self.partition.to_json(),
            "context_hash": self.context_hash,
            "exact_hash": self.exact_hash,
            "vector": base64.b64encode(self.vector_bytes).decode("ascii"),
            "guard": None if self.guard is None else self.guard.to_json(),
            "pieces": list(self.answer.pieces),
            "finish_reason": self.answer.finish_reason,
            "prompt_tokens": self.answer.prompt_tokens,
            "completion_tokens": self.answer.completion_tokens,
            "stored_at_s": self.stored_at_s,
            "expires_at_s": self.expires_at_s,
        }
        return orjson.dumps(body)

    @classmethod
    def from_bytes(cls, data: bytes) -> CacheEntry:
        try:
            body = orjson.loads(data)
            if body.get("v") != FORMAT_VERSION:
                raise EntryFormatError(f"cache entry format {body.get('v')!r} unknown")
            guard = body["guard"]
            return cls(
                entry_id=int(body["id"]),
                partition=Partition.from_json(body["partition"]),
                context_hash=body["context_hash"],
                exact_hash=body["exact_hash"],
                vector_bytes=base64.b64decode(body["vector"]),
                guard=None if guard is None else Guard.from_json(guard),
                answer=CachedAnswer(
                    pieces=tuple(body["pieces"]),
                    finish_reason=body["finish_reason"],
                    prompt_tokens=int(body["prompt_tokens"]),
                    completion_tokens=int(body["completion_tokens"]),
                ),
                stored_at_s=float(body["stored_at_s"]),
                expires_at_s=float(body["expires_at_s"]),
            )
        except EntryFormatError:
            raise
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as error:
            raise EntryFormatError(
                f"unreadable cache entry: {type(error).__name__}: {error}"
            ) from None
