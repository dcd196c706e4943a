"""A replica's index: vectors by partition, exact hashes, expiries."""

from __future__ import annotations

import numpy as np

from triskel.router.semantic_cache.entries import CachedAnswer, CacheEntry
from triskel.router.semantic_cache.guards import Guard
from triskel.router.semantic_cache.keys import Partition
from triskel.router.semantic_cache.local_index import LocalIndex

NDIM = 4
ACME = Partition("general", "acme", "llama", "p0")
GLOBEX = Partition("general", "globex", "llama", "p0")
GUARD = Guard((), (), (), None, (), frozenset({"hello"}))
ANSWER = CachedAnswer(("Hi",), "stop", 3, 1)


def entry(
    entry_id: int,
    partition: Partition = ACME,
    expires_at_s: float = 100.0,
    vector: tuple[float, ...] | None = (1.0, 0.0, 0.0, 0.0),
) -> CacheEntry:
    return CacheEntry(
        entry_id=entry_id,
        partition=partition,
        context_hash="c0",
        exact_hash=f"x{entry_id}",
        vector_bytes=b"" if vector is None else np.array(vector, dtype=np.float32).tobytes(),
        guard=None if vector is None else GUARD,
        answer=ANSWER,
        stored_at_s=0.0,
        expires_at_s=expires_at_s,
    )


QUERY = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)


def test_add_search_and_remove() -> None:
    index = LocalIndex(NDIM)
    index.add(entry(1))
    index.add(entry(2, partition=GLOBEX))
    [(found, similarity)] = index.search(ACME, QUERY, k=8)
    assert found.entry_id == 1 and found.guard == GUARD and found.context_hash == "c0"
    assert similarity > 0.999
    assert index.exact("x1") == 1
    assert index.remove(1) is True
    assert index.exact("x1") is None and index.search(ACME, QUERY, k=8) == []
    assert index.size == 1


def test_an_exact_only_entry_is_found_by_its_hash_not_by_search() -> None:
    index = LocalIndex(NDIM)
    index.add(entry(1, vector=None))
    assert index.exact("x1") == 1
    assert index.search(ACME, QUERY, k=8) == []
    assert index.num_vectors == 0


def test_a_vector_of_another_dimension_matches_exactly_only() -> None:
    # An entry stored by a router with another embedding model.
    index = LocalIndex(NDIM)
    index.add(entry(1, vector=(1.0, 0.0)))
    assert index.exact("x1") == 1
    assert index.search(ACME, QUERY, k=8) == []
    indexed = index.get(1)
    assert indexed is not None and indexed.guard is None


def test_expired_entries_leave_on_time_and_a_renewed_one_stays() -> None:
    index = LocalIndex(NDIM)
    index.add(entry(1, expires_at_s=10.0))
    index.add(entry(2, expires_at_s=20.0))
    index.add(entry(2, expires_at_s=30.0))  # stored again: its first expiry no longer counts
    assert index.remove_expired(9.0) == []
    assert index.remove_expired(10.0) == [1]
    assert index.remove_expired(25.0) == []
    assert 2 in index
    assert index.remove_expired(30.0) == [2]
    assert index.size == 0


def test_add_many_indexes_every_partition_and_the_last_copy_of_an_id_wins() -> None:
    index = LocalIndex(NDIM)
    index.add_many(
        [
            entry(1),
            entry(2, partition=GLOBEX),
            entry(3, vector=None),  # exact only
            entry(1, expires_at_s=200.0),  # the same id again: this copy counts
        ]
    )
    assert index.size == 3 and index.num_vectors == 2
    assert [found.entry_id for found, _ in index.search(GLOBEX, QUERY, k=8)] == [2]
    indexed = index.get(1)
    assert indexed is not None and indexed.expires_at_s == 200.0
    assert index.exact("x3") == 3
