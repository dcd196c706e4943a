"""Holder maps: the compiled one and the Python one give the same answers to the same
operations, and each walk agrees with plain sets."""

from __future__ import annotations

import random

import numpy as np
import pytest

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers import holders as holders_module
from triskel.router.scheduling.producers.holders import (
    NativeHolderMap,
    PyHolderMap,
    implementation,
    new_holder_map,
)

from support.holder_maps import HOLDER_MAPS, HolderMapFactory, compiled_map

H = [BlockHash(2**64 - 1 - i) for i in range(6)]  # the top of the hash range too


@pytest.mark.parametrize("make", HOLDER_MAPS)
def test_holders_are_added_discarded_and_read_as_masks(make: HolderMapFactory) -> None:
    holders = make()
    holders.add(H[0], 3)
    holders.add(H[0], 3)  # idempotent
    assert holders.mask(H[0]) == 1 << 3 and len(holders) == 1
    holders.add(H[0], 200)  # a second holder past the first word
    assert holders.mask(H[0]) == (1 << 3) | (1 << 200)
    holders.discard(H[0], 3)
    assert holders.mask(H[0]) == 1 << 200  # one left: a lone holder again
    holders.discard(H[0], 7)  # not a holder: nothing changes
    holders.discard(H[1], 7)  # not a block: nothing changes
    assert holders.mask(H[0]) == 1 << 200
    holders.discard(H[0], 200)
    assert len(holders) == 0 and H[0] not in holders and holders.mask(H[0]) == 0


@pytest.mark.parametrize("make", HOLDER_MAPS)
def test_the_walk_stops_each_slot_at_its_first_missing_block(make: HolderMapFactory) -> None:
    holders = make()
    for slot, depth in {0: 5, 1: 2, 2: 6, 4: 3, 70: 6}.items():
        for block_hash in H[:depth]:
            holders.add(block_hash, slot)
    holders.add(H[3], 1)  # held after a gap: does not count
    active = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 70)  # not slot 4
    depths = holders.depths(H, active, 71).tolist()
    # One entry per slot and a spare 0 at the end, which slot −1 (an unknown worker) reads.
    assert depths[:5] == [5, 2, 6, 0, 0] and depths[70] == 6 and depths[-1] == 0
    positions = np.array([70, -1, 1, 4, 0], dtype=np.int64)
    column = holders.depths_at(H, active, positions, 71)
    assert column.dtype == np.float64 and column.tolist() == [6.0, 0.0, 2.0, 0.0, 5.0]
    assert holders.depths([], active, 71).tolist() == [0] * 72


@pytest.mark.parametrize("seed", range(3))
def test_compiled_and_python_maps_agree_through_random_churn(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        num_slots = rng.choice([1, 3, 64, 65, 130, 1_000, 10_000])
        # Random 64-bit hashes and small ones (which share the table's probe runs).
        picks = ([rng.randrange(2**64), rng.randrange(40)] for _ in range(30))
        blocks = [BlockHash(rng.choice(pair)) for pair in picks]
        python, compiled = PyHolderMap(), compiled_map()
        for _ in range(rng.randrange(1, 400)):
            block_hash, slot = rng.choice(blocks), rng.randrange(num_slots)
            adds = rng.random() < 0.6
            for holders in (python, compiled):
                if adds:
                    holders.add(block_hash, slot)
                else:
                    holders.discard(block_hash, slot)
        assert len(python) == len(compiled)
        for block_hash in blocks:
            assert python.mask(block_hash) == compiled.mask(block_hash)
            assert (block_hash in python) == (block_hash in compiled)
        for _ in range(4):
            active = rng.getrandbits(num_slots)
            walked = rng.sample(blocks, rng.randrange(len(blocks) + 1))
            assert python.depths(walked, active, num_slots).tolist() == (
                compiled.depths(walked, active, num_slots).tolist()
            )
            positions = np.array(
                [rng.randrange(-1, num_slots) for _ in range(rng.randrange(50))], dtype=np.int64
            )
            assert python.depths_at(walked, active, positions, num_slots).tolist() == (
                compiled.depths_at(walked, active, positions, num_slots).tolist()
            )
        for block_hash in blocks:  # every holder gone: no entry left
            for slot in range(min(num_slots, 200)):
                python.discard(block_hash, slot)
                compiled.discard(block_hash, slot)
        assert len(python) == len(compiled)


@pytest.mark.parametrize("seed", range(2))
def test_the_maps_agree_while_the_table_grows_and_shrinks(seed: int) -> None:
    # Thousands of blocks: the compiled table doubles several times, moving its entries a
    # few per insert, and every answer is checked while entries sit in both arrays.
    rng = random.Random(seed)
    blocks = [
        BlockHash(rng.choice([rng.randrange(2**64), rng.randrange(6_000)])) for _ in range(6_000)
    ]
    python, compiled = PyHolderMap(), compiled_map()
    for step in range(30_000):
        block_hash, slot = rng.choice(blocks), rng.randrange(70)
        # Mostly adds at first, then mostly discards: the table fills, then empties.
        adds = rng.random() < (0.85 if step < 18_000 else 0.1)
        for holders in (python, compiled):
            if adds:
                holders.add(block_hash, slot)
            else:
                holders.discard(block_hash, slot)
        if step % 499 == 0:
            assert len(python) == len(compiled)
            for probe in rng.sample(blocks, 50):
                assert python.mask(probe) == compiled.mask(probe)
            walked = rng.sample(blocks, 20)
            active = rng.getrandbits(70)
            assert python.depths(walked, active, 70).tolist() == (
                compiled.depths(walked, active, 70).tolist()
            )
    assert len(python) == len(compiled)
    for block_hash in blocks:
        assert python.mask(block_hash) == compiled.mask(block_hash)


def test_the_compiled_walk_agrees_with_sets_on_ten_thousand_slots() -> None:
    # Wide masks, long prompts, and the scratch kept between walks left clean.
    holders = compiled_map()
    rng = random.Random(5)
    blocks = [BlockHash(5000 + i) for i in range(300)]
    num_slots = 10_000
    depth_of = {slot: rng.choice([0, 1, 37, 255, 256, 299, 300]) for slot in range(num_slots)}
    for slot, depth in depth_of.items():
        for block_hash in blocks[:depth]:
            holders.add(block_hash, slot)
    positions = np.arange(-1, num_slots, dtype=np.int64)
    for _ in range(3):
        asked = set(rng.sample(range(num_slots), 4_000))
        active = sum(1 << slot for slot in asked)
        column = holders.depths_at(blocks, active, positions, num_slots).tolist()
        assert column == [0.0] + [
            float(depth_of[s]) if s in asked else 0.0 for s in range(num_slots)
        ]


def test_the_compiled_map_refuses_bad_arguments_with_the_reason() -> None:
    holders = compiled_map()
    with pytest.raises(ValueError, match="slot must be >= 0"):
        holders.add(H[0], -1)
    with pytest.raises(OverflowError):
        holders.add(BlockHash(-1), 0)  # a hash is in [0, 2**64)
    with pytest.raises(TypeError, match="expected"):
        holders.depths_bytes(H, 1)  # type: ignore[call-arg]
    for wrong in (np.zeros(3, dtype=np.int8), np.zeros(2, dtype=np.int32), np.zeros(1)):
        with pytest.raises(ValueError, match="int64"):
            holders._depths_at(H, 1, wrong, 1)  # the C check under the typed method
    assert len(holders) == 0  # nothing half-done


def test_new_maps_are_the_compiled_kind_where_it_was_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if NativeHolderMap is not None:
        assert implementation() == "compiled" and isinstance(new_holder_map(), NativeHolderMap)
    monkeypatch.setattr(holders_module, "NativeHolderMap", None)
    assert implementation() == "python" and isinstance(new_holder_map(), PyHolderMap)
