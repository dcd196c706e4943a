"""Approximate per-worker radix trees: matching, edge splits, size bound and LRU eviction."""

from __future__ import annotations

import random
from array import array

import pytest

from triskel.router.scheduling.producers.radix_tree import RadixTrees, _common_length


def trees_with(*sequences: list[int], max_tokens: int = 1_000, worker: str = "a") -> RadixTrees:
    trees = RadixTrees(max_tokens)
    for tokens in sequences:
        trees.insert(worker, tokens)
    return trees


def match(trees: RadixTrees, tokens: list[int], worker: str = "a") -> int:
    return trees.match_lengths(tokens, [worker])[0]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ([1, 2, 3, 4, 7], 4),  # diverges inside the (4 5) edge after 4
        ([1, 2, 3, 9, 8], 4),  # follows the (9) branch, then stops
        ([1, 2, 3, 4, 5, 6], 5),  # longer than anything stored
        ([1, 2], 2),  # ends inside the shared (1 2 3) edge
        ([9, 1, 2], 0),  # no edge starts with 9 at the root
        ([], 0),
    ],
)
def test_match_length_counts_leading_tokens_held(query: list[int], expected: int) -> None:
    trees = trees_with([1, 2, 3, 4, 5], [1, 2, 3, 9])
    assert match(trees, query) == expected


def test_an_edge_split_keeps_the_size_and_reinserting_adds_nothing() -> None:
    trees = trees_with([1, 2, 3, 4, 5], [1, 2, 3, 9])
    # (1 2 3)─┬─(4 5) └─(9): 3 + 2 + 1 tokens.
    assert trees.num_tokens("a") == 6
    trees.insert("a", [1, 2, 3, 4, 5])
    trees.insert("a", [1, 2])  # ends inside an edge: splits it, adds no tokens
    assert trees.num_tokens("a") == 6
    assert match(trees, [1, 2, 3, 4, 5]) == 5 and match(trees, [1, 2, 3, 9]) == 4


def test_workers_share_nodes_but_not_contents() -> None:
    trees = RadixTrees(100)
    trees.insert("a", [1, 2, 3, 4, 5])
    trees.insert("b", [1, 2, 3, 9])
    # b's insert split a's edge; each worker still matches only what it was sent.
    assert trees.match_lengths([1, 2, 3, 4, 7], ["a", "b", "c"]) == [4, 3, 0]
    assert trees.match_lengths([1, 2, 3, 9], ["b", "a"]) == [4, 3]
    assert (trees.num_tokens("a"), trees.num_tokens("b"), trees.num_tokens("c")) == (5, 4, 0)


def test_the_least_recently_inserted_leaf_goes_first() -> None:
    trees = trees_with([1, 2, 3, 4, 5], [10, 11, 12, 13], max_tokens=9)
    trees.insert("a", [1, 2, 3, 4, 5])  # refresh: now (10..13) is the oldest
    trees.insert("a", [20, 21])  # 11 tokens > 9: evict (10..13)
    assert trees.num_tokens("a") == 7
    assert match(trees, [10, 11]) == 0
    assert match(trees, [1, 2, 3, 4, 5]) == 5 and match(trees, [20, 21]) == 2


def test_evicting_a_branch_leaf_keeps_the_shared_prefix() -> None:
    trees = trees_with([1, 2, 3, 4, 5], [1, 2, 3, 9, 9], max_tokens=7)
    trees.insert("a", [1, 2, 3, 7])  # 8 tokens: the oldest leaf (4 5) goes, (1 2 3) stays
    assert trees.num_tokens("a") == 6
    assert match(trees, [1, 2, 3, 4, 5]) == 3
    assert match(trees, [1, 2, 3, 9, 9]) == 5


def test_one_workers_eviction_leaves_anothers_tree_alone() -> None:
    trees = RadixTrees(6)
    trees.insert("a", [1, 2, 3, 4, 5])
    trees.insert("b", [1, 2, 3, 4, 5])
    trees.insert("a", [7, 8])  # a: 7 tokens > 6 → a loses (1..5); b keeps it
    assert trees.match_lengths([1, 2, 3, 4, 5], ["a", "b"]) == [0, 5]
    assert (trees.num_tokens("a"), trees.num_tokens("b")) == (2, 5)


def test_matching_does_not_refresh_recency() -> None:
    trees = trees_with([1, 2], [3, 4], max_tokens=4)
    match(trees, [1, 2])  # a lookup says nothing about what the worker keeps
    trees.insert("a", [5, 6])
    assert match(trees, [1, 2]) == 0 and match(trees, [3, 4]) == 2


def test_a_prompt_longer_than_the_bound_keeps_only_its_head() -> None:
    trees = trees_with([7, 7, 7], list(range(10)), max_tokens=4)
    assert trees.num_tokens("a") == 4
    assert match(trees, list(range(10))) == 4 and match(trees, [7]) == 0


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_tokens_per_worker must be >= 1, got 0"):
        RadixTrees(0)


def test_removing_a_worker_keeps_the_others() -> None:
    trees = RadixTrees(100)
    trees.insert("a", [1, 2, 3, 4])
    trees.insert("b", [1, 2, 9])
    trees.remove_worker("a")
    assert trees.match_lengths([1, 2, 3, 4], ["a", "b"]) == [0, 2]
    assert trees.num_tokens("a") == 0
    trees.insert("a", [1, 2, 3])  # a comes back with an empty tree
    assert trees.match_lengths([1, 2, 3, 4], ["a", "b"]) == [3, 2]


def test_random_inserts_match_a_segment_lru_model() -> None:
    # Reference model: sequences (f, 100f, 100f + 1, ...) nest by their first token f, so
    # each worker's tree is one chain per f, cut into segments [length, tick] (inner to
    # outer) where inserts of different lengths ended. Eviction drops the outermost segment
    # of the chain whose outer tick is oldest. The tree must agree exactly.
    rng = random.Random(3)
    trees = RadixTrees(50)
    chains: dict[str, dict[int, list[list[int]]]] = {"a": {}, "b": {}}
    for tick in range(1, 600):
        worker = rng.choice("ab")
        # Disjoint first tokens per worker: another worker's splits would cut a worker's
        # segments finer (still LRU, but no longer this model's whole segments).
        first = rng.randrange(8) + (8 if worker == "b" else 0)
        length = rng.randrange(2, 13)
        trees.insert(worker, [first, *(first * 100 + i for i in range(length - 1))])
        segments = chains[worker].setdefault(first, [])
        done = 0
        for index, segment in enumerate(list(segments)):
            if done >= length:
                break
            if done + segment[0] > length:  # the insert ends inside: split the segment
                segments[index : index + 1] = [
                    [length - done, tick],
                    [done + segment[0] - length, segment[1]],
                ]
                done = length
                break
            segment[1] = tick
            done += segment[0]
        if done < length:
            segments.append([length - done, tick])
        while sum(s[0] for c in chains[worker].values() for s in c) > 50:
            oldest = min(chains[worker], key=lambda f: chains[worker][f][-1][1])
            chains[worker][oldest].pop()
            if not chains[worker][oldest]:
                del chains[worker][oldest]
        for w, by_first in chains.items():
            expected = sum(s[0] for c in by_first.values() for s in c)
            assert trees.num_tokens(w) == expected, (tick, w)
    for worker, by_first in chains.items():
        for first, segments in by_first.items():
            held = sum(s[0] for s in segments)
            query = [first, *(first * 100 + i for i in range(20))]
            assert match(trees, query, worker) == held


@pytest.mark.parametrize(
    ("edge", "tokens", "start", "expected"),
    [
        ((1, 2, 3), (1, 2, 3), 0, 3),  # whole edge
        ((1, 2, 3), (0, 1, 2), 1, 2),  # query ends first
        ((1, 2, 3, 4, 5, 6, 7), (1, 2, 3, 4, 5, 0, 7), 0, 5),  # mismatch at index 5
        ((1, 2, 3, 4, 5, 6, 7), (1, 9), 0, 1),  # mismatch right after the first token
        (tuple(range(1000)), (*range(999), 10**6), 0, 999),  # last token differs
        # 256 and 65,792 share their first two bytes: still a mismatch of whole tokens.
        ((1, 256), (1, 65_792), 0, 1),
    ],
)
def test_common_length_finds_the_first_mismatch(
    edge: tuple[int, ...], tokens: tuple[int, ...], start: int, expected: int
) -> None:
    packed = array("I", edge).tobytes(), array("I", tokens).tobytes()
    assert _common_length(*packed, start) == expected
