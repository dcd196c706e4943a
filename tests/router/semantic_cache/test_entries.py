"""Cache entries: ids from exact hashes, and a byte form other routers can read."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest

from triskel.router.semantic_cache.entries import (
    CachedAnswer,
    CacheEntry,
    EntryFormatError,
    entry_id_for,
)
from triskel.router.semantic_cache.guards import Guard
from triskel.router.semantic_cache.keys import Partition

VECTOR = np.array([0.6, 0.8, 0.0], dtype=np.float32)
ENTRY = CacheEntry(
    entry_id=entry_id_for("ab" * 16),
    partition=Partition("code", "acme", "llama", "p0"),
    context_hash="c0",
    exact_hash="ab" * 16,
    vector_bytes=VECTOR.tobytes(),
    guard=Guard(("5",), ("not",), ("fr",), "en", ("gpt-4",), frozenset({"gpt", "4"})),
    answer=CachedAnswer(("Hel", "lo", " ✓"), "length", 12, 3),
    stored_at_s=1000.5,
    expires_at_s=4600.5,
)


def test_round_trips_through_bytes() -> None:
    copy = CacheEntry.from_bytes(ENTRY.to_bytes())
    assert copy == ENTRY
    assert np.array_equal(copy.vector(), VECTOR)
    assert copy.answer.text == "Hello ✓"
    assert copy.category == "code" and copy.is_semantic


def test_an_exact_only_entry_round_trips() -> None:
    exact_only = dataclasses.replace(ENTRY, vector_bytes=b"", guard=None)
    copy = CacheEntry.from_bytes(exact_only.to_bytes())
    assert copy == exact_only and not copy.is_semantic


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        orjson.dumps({"v": 999}),  # a future format: absent for this router
        orjson.dumps({"v": 1, "id": 1}),  # fields missing
        orjson.dumps([1, 2]),
    ],
)
def test_unreadable_bytes_raise_entry_format_error(data: bytes) -> None:
    with pytest.raises(EntryFormatError):
        CacheEntry.from_bytes(data)


def test_entry_ids_are_63_bit_and_stable() -> None:
    # The same exact hash on any router gives the same id: storing twice replaces.
    assert entry_id_for("ff" * 16) == (1 << 63) - 1
    assert entry_id_for("00" * 8 + "ff" * 8) == 0
    assert entry_id_for("ab" * 16) == entry_id_for("ab" * 16)
