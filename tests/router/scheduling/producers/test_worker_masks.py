"""Worker bitmasks: slots, masks, and the prefix walk over `hash → holders mask`."""

from __future__ import annotations

import random

import pytest

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers import worker_masks
from triskel.router.scheduling.producers.worker_masks import (
    WorkerSlots,
    as_mask,
    holder_depths,
    match_lengths,
    with_holder,
    without_holder,
)

from support.holder_maps import HOLDER_MAPS, HolderMapFactory

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


@pytest.mark.parametrize("make", HOLDER_MAPS)
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
    holdings: dict[str, int], expected: dict[str, int], make: HolderMapFactory
) -> None:
    slots = WorkerSlots()
    holders = make()
    for worker, depth in holdings.items():
        for block_hash in H[:depth]:
            holders.add(block_hash, slots.assign(worker))
    if "d" in holdings:
        holders.add(H[3], slots.assign("d"))  # held after a gap
    workers = list(expected)
    assert match_lengths(holders, H, workers, slots) == [expected[w] for w in workers]


@pytest.mark.parametrize("make", HOLDER_MAPS)
def test_masks_agree_with_sets_on_a_thousand_workers(make: HolderMapFactory) -> None:
    # The same walk done with plain sets, on a random large instance.
    rng = random.Random(3)
    slots = WorkerSlots()
    workers = [f"w{i}" for i in range(1000)]
    depth_of = {w: rng.randrange(len(H) + 1) for w in workers}
    holders = make()
    for worker, depth in depth_of.items():
        for block_hash in H[:depth]:
            holders.add(block_hash, slots.assign(worker))
    asked = [*rng.sample(workers, 300), "never-seen"]
    assert match_lengths(holders, H, asked, slots) == [depth_of.get(w, 0) for w in asked]


def test_holder_depths_reads_each_depth_off_its_bit_planes() -> None:
    # Slots 0..3: slot 0 holds 5 blocks (0b101: planes 0 and 2), slot 1 holds 2 (plane 1),
    # slot 2 holds all 6 (0b110), slot 3 none; slot 4 holds 3 but is not asked about.
    holders = {h: 0 for h in H}
    for slot, depth in {0: 5, 1: 2, 2: 6, 4: 3}.items():
        for block_hash in H[:depth]:
            holders[block_hash] |= 1 << slot
    depths = holder_depths(holders, H, active=0b1111, num_slots=5)
    # One entry per slot and a spare 0 at the end, which slot −1 (an unknown worker) reads.
    assert depths.tolist() == [5, 2, 6, 0, 0, 0]
    assert depths[-1] == 0


def test_holder_depths_agree_with_sets_on_ten_thousand_slots() -> None:
    # Wide masks and prompts longer than a byte of depth (300 blocks: nine planes).
    rng = random.Random(5)
    blocks = [BlockHash(5000 + i) for i in range(300)]
    num_slots = 10_000
    depth_of = {slot: rng.choice([0, 1, 37, 255, 256, 299, 300]) for slot in range(num_slots)}
    holders: dict[BlockHash, int] = {}
    for slot, depth in depth_of.items():
        for block_hash in blocks[:depth]:
            holders[block_hash] = holders.get(block_hash, 0) | (1 << slot)
    asked = rng.sample(range(num_slots), 4_000)
    active = sum(1 << slot for slot in asked)
    depths = holder_depths(holders, blocks, active, num_slots).tolist()
    chosen = set(asked)
    assert depths[:num_slots] == [depth_of[s] if s in chosen else 0 for s in range(num_slots)]


@pytest.mark.parametrize("seed", range(3))
def test_holder_depths_read_alike_in_python_and_in_numpy(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Few set bits are read in Python, many with numpy: the same depths, every size.
    rng = random.Random(seed)
    for _ in range(300):
        num_slots = rng.choice([1, 3, 4, 8, 16, 40, 100])
        blocks = [BlockHash(9000 + i) for i in range(rng.randint(0, 40))]
        holders: dict[BlockHash, int] = {}
        for block_hash in blocks:
            for slot in range(num_slots):
                if rng.random() < 0.9:
                    holders[block_hash] = with_holder(holders.get(block_hash, 0), slot)
        active = rng.getrandbits(num_slots)
        read = {}
        for threshold, path in ((10**9, "python"), (-1, "numpy")):
            monkeypatch.setattr(worker_masks, "_PYTHON_READS_UP_TO", threshold)
            read[path] = holder_depths(holders, blocks, active, num_slots)
        assert read["python"].dtype == read["numpy"].dtype
        assert read["python"].tolist() == read["numpy"].tolist()


def test_a_lone_holder_is_stored_as_its_slot_and_a_mask_only_for_several() -> None:
    value = with_holder(0, 9_999)  # one holder: ~slot, 28 bytes, not a 1.25 kB mask
    assert value == ~9_999 and as_mask(value) == 1 << 9_999
    assert with_holder(value, 9_999) == value
    both = with_holder(value, 3)
    assert both == (1 << 9_999) | (1 << 3)
    assert without_holder(both, 9_999) == ~3  # back to a lone holder
    assert without_holder(~3, 3) == 0  # nobody: the caller drops the entry
    assert without_holder(~3, 4) == ~3
    assert as_mask(0) == 0


def test_walks_read_lone_holders_and_masks_alike() -> None:
    # The same holdings stored both ways give the same depths.
    rng = random.Random(8)
    depth_of = {slot: rng.randrange(5) for slot in range(40)}
    depth_of[17] = len(H)  # alone on the last two blocks
    masks: dict[BlockHash, int] = {}
    stored: dict[BlockHash, int] = {}
    for slot, depth in depth_of.items():
        for block_hash in H[:depth]:
            masks[block_hash] = masks.get(block_hash, 0) | (1 << slot)
            stored[block_hash] = with_holder(stored.get(block_hash, 0), slot)
    lone = [h for h, v in stored.items() if v < 0]
    assert lone == H[4:]
    active = (1 << 40) - 1
    expected = holder_depths(masks, H, active, 40).tolist()
    assert holder_depths(stored, H, active, 40).tolist() == expected
