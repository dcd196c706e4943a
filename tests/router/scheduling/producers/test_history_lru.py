"""A worker's routing history LRU: the compiled one and the OrderedDict one keep the same
entries in the same order, and write the same holders, through any operations."""

from __future__ import annotations

import random

import pytest

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.history_lru import (
    BlockLru,
    HistoryLru,
    PyBlockLru,
    new_history_lru,
)
from triskel.router.scheduling.producers.holders import HolderMap, PyHolderMap

from support.holder_maps import compiled_map

H = [BlockHash(100 + i) for i in range(8)]


def _compiled_pair() -> tuple[HolderMap, HistoryLru]:
    holders = compiled_map()
    return holders, new_history_lru(holders)


def test_the_compiled_lru_goes_with_the_compiled_map_and_the_python_one_with_python() -> None:
    _holders, lru = _compiled_pair()
    assert BlockLru is not None and isinstance(lru, BlockLru)
    assert isinstance(new_history_lru(PyHolderMap()), PyBlockLru)
    with pytest.raises(TypeError, match="compiled HolderMap"):
        lru.record(H, 0.0, PyHolderMap(), 0, 10)


def test_recording_moves_known_blocks_to_the_newest_end_and_evicts_the_oldest() -> None:
    pairs: list[tuple[HolderMap, HistoryLru]] = [(PyHolderMap(), PyBlockLru()), _compiled_pair()]
    for holders, lru in pairs:
        lru.record(H[:3], 1.0, holders, 5, 4)
        lru.record([H[0], H[3]], 2.0, holders, 5, 4)
        assert lru.items() == [(H[1], 1.0), (H[2], 1.0), (H[0], 2.0), (H[3], 2.0)]
        lru.record([H[4]], 3.0, holders, 5, 4)
        assert [h for h, _ in lru.items()] == [H[2], H[0], H[3], H[4]]
        assert holders.mask(H[1]) == 0 and holders.mask(H[4]) == 1 << 5
        assert lru.expire(2.0, holders, 5) == 3  # those at or before 2.0
        assert lru.items() == [(H[4], 3.0)] and lru.oldest_time() == 3.0
        lru.drop_all(holders, 5)
        assert len(lru) == 0 and lru.oldest_time() is None
        assert len(holders) == 0


SMALL = (300, 40, (5, 50, 10_000), (1.0, 10.0, 100.0))
# Thousands of blocks a worker: pages of nodes added, tables grown (their entries moving
# a few per insert) while records, expiries and drops go on.
LARGE = (5_000, 200, (3_000, 10_000), (100.0, 1_000.0))


@pytest.mark.parametrize(
    ("seed", "sizes"), [(0, SMALL), (1, SMALL), (2, SMALL), (3, LARGE), (4, LARGE)]
)
def test_compiled_and_python_lrus_agree_through_random_operations(
    seed: int, sizes: tuple[int, int, tuple[int, ...], tuple[float, ...]]
) -> None:
    num_blocks, longest, capacities, lives = sizes
    rng = random.Random(seed)
    blocks = [BlockHash(rng.randrange(2**64)) for _ in range(num_blocks)]
    python_holders = PyHolderMap()
    compiled_holders = compiled_map()
    pairs: list[tuple[HolderMap, dict[int, HistoryLru]]] = [
        (python_holders, {slot: PyBlockLru() for slot in range(3)}),
        (compiled_holders, {slot: new_history_lru(compiled_holders) for slot in range(3)}),
    ]
    now = 0.0
    largest = 0
    for _ in range(2_000):
        now += rng.random()
        slot = rng.randrange(3)
        action = rng.random()
        start = rng.randrange(len(blocks))
        prompt = blocks[start : start + rng.randrange(1, longest)]
        capacity = rng.choice(capacities)
        oldest_live = now - rng.choice(lives)
        for holders, lrus in pairs:
            lru = lrus[slot]
            if action < 0.8:
                lru.record(prompt, now, holders, slot, capacity)
            elif action < 0.98:
                lru.expire(oldest_live, holders, slot)
            else:
                lru.drop_all(holders, slot)
        (_, python_lrus), (_, compiled_lrus) = pairs
        assert python_lrus[slot].items() == compiled_lrus[slot].items()
        largest = max(largest, len(compiled_lrus[slot]))
    for block_hash in blocks:
        assert python_holders.mask(block_hash) == compiled_holders.mask(block_hash)
    assert len(python_holders) == len(compiled_holders)
    assert largest > (1_000 if num_blocks > 300 else 0)  # the large case did grow
