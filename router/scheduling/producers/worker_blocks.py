"""The blocks one worker holds, per the precise index (kept for removal: a worker's
blocks leave the holder map when it clears its cache or leaves).

Adding a block new to the set adds the worker to its holders; discarding one it holds
takes the worker out of them. Two implementations with the same answers (the tests
drive both alike and compare):

- `BlockSet` from `_holder_map.c`, paired with the compiled `HolderMap`: a table of
  64-bit hashes, 16 bytes a place.
- `PyBlockSet`: a dict used as a set (a dict of atoms, which the GC never walks),
  paired with the Python `HolderMap`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.holders import HolderMap, NativeHolderMap

try:
    from triskel.router.scheduling.producers._holder_map import BlockSet as BlockSet
except ImportError:  # built without a C compiler
    BlockSet = None  # type: ignore[assignment,misc]


class WorkerBlocks(Protocol):
    def add_all(self, block_hashes: Iterable[BlockHash], holders: HolderMap, slot: int) -> None:
        """Each hash in the set; a new one added to `holders` at `slot`."""
        ...

    def discard_all(self, block_hashes: Iterable[BlockHash], holders: HolderMap, slot: int) -> None:
        """Each hash out of the set; one that was in it out of `holders` at `slot`."""
        ...

    def drop_all(self, holders: HolderMap, slot: int) -> None:
        """Empties the set, each hash out of `holders` at `slot`."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, block_hash: object) -> bool: ...


class PyBlockSet:
    """`WorkerBlocks` as a dict used as a set (unlike a set, a dict of atoms is not
    GC-tracked)."""

    __slots__ = ("blocks",)

    def __init__(self) -> None:
        self.blocks: dict[BlockHash, None] = {}

    def add_all(self, block_hashes: Iterable[BlockHash], holders: HolderMap, slot: int) -> None:
        blocks = self.blocks
        add = holders.add
        for block_hash in block_hashes:
            if block_hash not in blocks:
                blocks[block_hash] = None
                add(block_hash, slot)

    def discard_all(self, block_hashes: Iterable[BlockHash], holders: HolderMap, slot: int) -> None:
        discard = holders.discard
        pop = self.blocks.pop
        for block_hash in block_hashes:
            if pop(block_hash, 0) is None:  # it was there
                discard(block_hash, slot)

    def drop_all(self, holders: HolderMap, slot: int) -> None:
        discard = holders.discard
        for block_hash in self.blocks:
            discard(block_hash, slot)
        self.blocks = {}

    def __len__(self) -> int:
        return len(self.blocks)

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self.blocks


def new_worker_blocks(holders: HolderMap) -> WorkerBlocks:
    """A set of the kind `holders` is (the compiled one writes the compiled map)."""
    compiled = NativeHolderMap is not None and isinstance(holders, NativeHolderMap)
    return BlockSet() if compiled and BlockSet is not None else PyBlockSet()
