"""usearch-backed vector indexes: one per partition, similarities not distances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from triskel.router.semantic_cache.index import HnswParams, PartitionedIndex, Vector, VectorIndex

NDIM = 8


def unit(*components: float) -> Vector:
    vector = np.zeros(NDIM, dtype=np.float32)
    vector[: len(components)] = components
    normalized: Vector = vector / np.linalg.norm(vector)
    return normalized


def at_angle(degrees: float) -> Vector:
    """A unit vector whose cosine similarity with unit(1) is cos(degrees)."""
    radians = math.radians(degrees)
    return unit(math.cos(radians), math.sin(radians))


def test_search_returns_similarities_most_similar_first() -> None:
    index = VectorIndex(NDIM)
    index.add(1, at_angle(0))
    index.add(2, at_angle(60))  # cos 60° = 0.5
    index.add(3, at_angle(90))  # orthogonal: 0
    found = index.search(unit(1), k=8)
    assert [key for key, _ in found] == [1, 2, 3]
    # float16 storage: similarities within 1e-3.
    assert [s for _, s in found] == pytest.approx([1.0, 0.5, 0.0], abs=1e-3)
    assert index.size == 3


def test_k_bounds_the_results() -> None:
    index = VectorIndex(NDIM)
    for key in range(10):
        index.add(key, at_angle(key * 5))
    assert [key for key, _ in index.search(unit(1), k=3)] == [0, 1, 2]


def test_remove_and_replace() -> None:
    index = VectorIndex(NDIM)
    index.add(1, at_angle(0))
    index.add(2, at_angle(30))
    assert index.remove(1) is True
    assert index.remove(1) is False  # already gone
    assert 1 not in index and index.size == 1
    assert [key for key, _ in index.search(unit(1), k=8)] == [2]
    index.add(2, at_angle(90))  # adding a key again replaces its vector
    assert index.size == 1
    assert index.search(unit(1), k=8)[0][1] == pytest.approx(0.0, abs=1e-3)


def test_an_empty_index_finds_nothing() -> None:
    assert VectorIndex(NDIM).search(unit(1), k=8) == []


def test_vectors_of_another_dimension_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \(4,\) is not \(8,\)"):
        VectorIndex(NDIM).add(1, np.ones(4, dtype=np.float32))


def test_partitions_are_apart_created_lazily_and_dropped_when_empty() -> None:
    index: PartitionedIndex[str] = PartitionedIndex(NDIM)
    assert index.num_partitions == 0
    index.add("acme", 1, at_angle(0))
    index.add("globex", 2, at_angle(0))
    assert index.num_partitions == 2 and index.size == 2
    # Each partition finds only its own keys, even identical vectors.
    assert [key for key, _ in index.search("acme", unit(1), k=8)] == [1]
    assert [key for key, _ in index.search("globex", unit(1), k=8)] == [2]
    assert index.search("initech", unit(1), k=8) == []
    assert index.remove(2) is True
    assert index.num_partitions == 1  # globex emptied: its index is gone
    assert index.remove(2) is False


def test_a_key_added_to_another_partition_moves_there() -> None:
    index: PartitionedIndex[str] = PartitionedIndex(NDIM)
    index.add("acme", 1, at_angle(0))
    index.add("globex", 1, at_angle(0))
    assert index.size == 1 and index.num_partitions == 1
    assert index.search("acme", unit(1), k=8) == []
    assert 1 in index


def test_add_many_adds_and_replaces() -> None:
    index = VectorIndex(NDIM)
    index.add(1, at_angle(90))
    index.add_many([1, 2], np.stack([at_angle(0), at_angle(60)]))
    assert index.size == 2
    # Key 1's vector was replaced: it is now the nearest to unit(1).
    assert [key for key, _ in index.search(unit(1), k=8)] == [1, 2]
    with pytest.raises(ValueError, match=r"vectors shape \(1, 8\) is not \(2, 8\)"):
        index.add_many([3, 4], np.stack([at_angle(0)]))


def test_partitioned_add_many_moves_keys_from_other_partitions() -> None:
    index: PartitionedIndex[str] = PartitionedIndex(NDIM)
    index.add("acme", 1, at_angle(0))
    index.add_many("globex", [1, 2], np.stack([at_angle(0), at_angle(10)]))
    assert index.num_partitions == 1 and index.size == 2
    assert [key for key, _ in index.search("globex", unit(1), k=8)] == [1, 2]


def test_hnsw_params_are_checked() -> None:
    with pytest.raises(ValueError, match=r"HnswParams\.expansion_search must be >= 2, got 1"):
        HnswParams(expansion_search=1)
    index = VectorIndex(NDIM, HnswParams(connectivity=8, expansion_search=16))
    index.add(1, unit(1))
    assert index.search(unit(1), k=1)[0][0] == 1
