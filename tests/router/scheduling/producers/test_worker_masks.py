"""Worker bitmasks: slots, masks, and the prefix walk over `hash → holders mask`."""

from __future__ import annotations

import random

import pytest

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.worker_masks import WorkerSlots, match_lengths

H = [BlockHash(1000 + i) for i in range(6)]


def test_slots_are_small_stable_and_reused_after_release() -> None:
    slots = WorkerSlots()
    assert (slots.bit("a"), slots.bit("b"), slots.bit("a")) == (1, 2, 1)
    slots.release("a")
    assert slots.slot("a") is None
    assert slots.bit("c") == 1  # a's slot, reused
    assert slots.mask_of(["b", "c", "unknown"]) == 0b11


def test_a_remembered_mask_is_dropped_when_a_slot_changes_hands() -> None:
    slots = WorkerSlots()
    slots.bit("a")
    slots.bit("b")
    assert slots.mask_of(["a", "b", "c"]) == 0b11  # c is unknown: no bit
    slots.bit("c")  # c now has slot 2: the same candidates mean another mask
    assert slots.mask_of(["a", "b", "c"]) == 0b111
    slots.release("a")
    assert slots.mask_of(["a", "b", "c"]) == 0b110
    slots.bit("d")  # takes a's freed slot 0, which the candidates do not include
    assert slots.mask_of(["a", "b", "c"]) == 0b110


@pytest.mark.parametrize(
    ("holdings", "expected"),
    [
        # a holds the whole prompt, b its first two blocks, c nothing.
        ({"a": 6, "b": 2}, {"a": 6, "b": 2, "c": 0}),
        # A block held after a gap does not count: d stops at its first missing block.
        ({"d": 1}, {"d": 1, "a": 0}),
    ],
)
def test_the_walk_stops_each_worker_at_its_first_missing_block(
    holdings: dict[str, int], expected: dict[str, int]
) -> None:
    slots = WorkerSlots()
    holders: dict[BlockHash, int] = {}
    for worker, depth in holdings.items():
        for block_hash in H[:depth]:
            holders[block_hash] = holders.get(block_hash, 0) | slots.bit(worker)
    if "d" in holdings:
        holders[H[3]] = holders.get(H[3], 0) | slots.bit("d")  # held after a gap
    workers = list(expected)
    assert match_lengths(holders, H, workers, slots) == [expected[w] for w in workers]


def test_masks_agree_with_sets_on_a_thousand_workers() -> None:
    # The same walk done with plain sets, on a random large instance.
    rng = random.Random(3)
    slots = WorkerSlots()
    workers = [f"w{i}" for i in range(1000)]
    depth_of = {w: rng.randrange(len(H) + 1) for w in workers}
    holders: dict[BlockHash, int] = {}
    for worker, depth in depth_of.items():
        for block_hash in H[:depth]:
            holders[block_hash] = holders.get(block_hash, 0) | slots.bit(worker)
    asked = [*rng.sample(workers, 300), "never-seen"]
    assert match_lengths(holders, H, asked, slots) == [depth_of.get(w, 0) for w in asked]
