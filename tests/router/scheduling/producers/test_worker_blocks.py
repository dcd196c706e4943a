"""A worker's block set: the compiled one and the dict one hold the same blocks and write
the same holders through any operations."""

from __future__ import annotations

import random

import pytest

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.holders import HolderMap, PyHolderMap
from triskel.router.scheduling.producers.worker_blocks import (
    BlockSet,
    PyBlockSet,
    WorkerBlocks,
    new_worker_blocks,
)

from support.holder_maps import compiled_map

H = [BlockHash(2**64 - 1 - i) for i in range(5)]


def test_each_kind_of_set_goes_with_its_kind_of_holder_map() -> None:
    blocks = new_worker_blocks(compiled_map())
    assert BlockSet is not None and isinstance(blocks, BlockSet)
    assert isinstance(new_worker_blocks(PyHolderMap()), PyBlockSet)
    with pytest.raises(TypeError, match="compiled HolderMap"):
        blocks.add_all(H, PyHolderMap(), 0)


@pytest.mark.parametrize("kind", ["python", "compiled"])
def test_blocks_join_and_leave_the_holders_once(kind: str) -> None:
    holders: HolderMap = PyHolderMap() if kind == "python" else compiled_map()
    blocks = new_worker_blocks(holders)
    other = new_worker_blocks(holders)
    blocks.add_all([H[0], H[1], H[0]], holders, 2)
    other.add_all([H[1]], holders, 7)
    assert len(blocks) == 2 and H[0] in blocks and H[2] not in blocks
    assert holders.mask(H[1]) == (1 << 2) | (1 << 7)
    blocks.discard_all([H[1], H[2]], holders, 2)  # H[2] was never there: nothing
    assert holders.mask(H[1]) == 1 << 7 and len(blocks) == 1
    blocks.drop_all(holders, 2)
    assert len(blocks) == 0 and holders.mask(H[0]) == 0
    other.drop_all(holders, 7)
    assert len(holders) == 0


@pytest.mark.parametrize("seed", range(3))
def test_compiled_and_python_sets_agree_through_random_operations(seed: int) -> None:
    rng = random.Random(seed)
    universe = [BlockHash(rng.randrange(2**64)) for _ in range(200)]
    python_holders: HolderMap = PyHolderMap()
    compiled_holders: HolderMap = compiled_map()
    pairs: list[tuple[HolderMap, dict[int, WorkerBlocks]]] = [
        (holders, {slot: new_worker_blocks(holders) for slot in range(4)})
        for holders in (python_holders, compiled_holders)
    ]
    for _ in range(1_500):
        slot = rng.randrange(4)
        action = rng.random()
        chosen = rng.sample(universe, rng.randrange(1, 20))
        for holders, sets in pairs:
            if action < 0.6:
                sets[slot].add_all(chosen, holders, slot)
            elif action < 0.97:
                sets[slot].discard_all(chosen, holders, slot)
            else:
                sets[slot].drop_all(holders, slot)
        (_, python_sets), (_, compiled_sets) = pairs
        assert len(python_sets[slot]) == len(compiled_sets[slot])
    for block_hash in universe:
        assert python_holders.mask(block_hash) == compiled_holders.mask(block_hash)
        for slot in range(4):
            assert (block_hash in pairs[0][1][slot]) == (block_hash in pairs[1][1][slot])
