"""Block hash → the worker slots holding it, and the prefix walk over it.

Both prefix indexes (the precise one from KV events, the routing history) keep one
`HolderMap`: `add` / `discard` a holder of a block, `mask` of a block's holders, and
`depths`, the prefix walk: per slot, the leading blocks of a prompt it holds.

Two implementations with the same answers (the tests drive both with the same
operations and compare):

- `NativeHolderMap` (`_holder_map.c`): an open-addressing table of (hash, holders)
  pairs in C, a bitmap per block held by several workers. A walk costs a probe and an
  AND over the words still active per block. Built by the install where a C compiler
  is (`setup.py`); hand-written because no library offers a hash → bitset map with
  this walk, and in Python the walk was most of a pick at fleet scale
  (docs/benchmarks.md, "Decision time").
- `PyHolderMap`: a dict of ints (`worker_masks`), used when the extension was not
  built; the router says which one it runs at start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.candidates import FloatColumn, IntColumn, gather
from triskel.router.scheduling.producers.worker_masks import (
    as_mask,
    holder_depths,
    with_holder,
    without_holder,
)

try:
    from triskel.router.scheduling.producers._holder_map import HolderMap as CompiledMap
except ImportError:  # built without a C compiler
    CompiledMap = None  # type: ignore[assignment,misc]


class HolderMap(Protocol):
    def add(self, block_hash: BlockHash, slot: int) -> None:
        """The worker at `slot` holds the block."""
        ...

    def discard(self, block_hash: BlockHash, slot: int) -> None:
        """It no longer does (a block nobody holds has no entry)."""
        ...

    def mask(self, block_hash: BlockHash) -> int:
        """The holders' bitmask (1 << slot each; 0 when none)."""
        ...

    def depths(
        self, block_hashes: Sequence[BlockHash], active: int, num_slots: int
    ) -> npt.NDArray[np.int64]:
        """Per slot, the leading blocks of `block_hashes` it holds among the slots of
        the mask `active` (0 for the others), plus one spare 0 at the end (index −1
        reads it): from block 0, a slot stops at its first missing block."""
        ...

    def depths_at(
        self, block_hashes: Sequence[BlockHash], active: int, positions: IntColumn, num_slots: int
    ) -> FloatColumn:
        """`depths` read at `positions` (slots, −1 reading 0): a candidate column."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, block_hash: object) -> bool: ...


class PyHolderMap:
    """`HolderMap` as a dict of ints: a lone holder as ~slot, several as a mask
    (`worker_masks`: a dict of atoms the garbage collector never walks)."""

    __slots__ = ("_holders",)

    def __init__(self) -> None:
        self._holders: dict[BlockHash, int] = {}

    def add(self, block_hash: BlockHash, slot: int) -> None:
        self._holders[block_hash] = with_holder(self._holders.get(block_hash, 0), slot)

    def discard(self, block_hash: BlockHash, slot: int) -> None:
        value = self._holders.get(block_hash)
        if value is None:
            return
        rest = without_holder(value, slot)
        if rest:
            self._holders[block_hash] = rest
        else:
            del self._holders[block_hash]

    def mask(self, block_hash: BlockHash) -> int:
        return as_mask(self._holders.get(block_hash, 0))

    def depths(
        self, block_hashes: Sequence[BlockHash], active: int, num_slots: int
    ) -> npt.NDArray[np.int64]:
        return holder_depths(self._holders, block_hashes, active, num_slots)

    def depths_at(
        self, block_hashes: Sequence[BlockHash], active: int, positions: IntColumn, num_slots: int
    ) -> FloatColumn:
        return gather(self.depths(block_hashes, active, num_slots), positions)

    def stored_values(self) -> list[int]:
        """The raw values (for tests of the encoding)."""
        return list(self._holders.values())

    def __len__(self) -> int:
        return len(self._holders)

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self._holders


if CompiledMap is not None:

    class NativeHolderMap(CompiledMap):
        """`HolderMap` in C (`_holder_map.c`)."""

        __slots__ = ()

        def depths(
            self, block_hashes: Sequence[BlockHash], active: int, num_slots: int
        ) -> npt.NDArray[np.int64]:
            return np.frombuffer(self.depths_bytes(block_hashes, active, num_slots), np.int64)

        def depths_at(
            self,
            block_hashes: Sequence[BlockHash],
            active: int,
            positions: IntColumn,
            num_slots: int,
        ) -> FloatColumn:
            column = self._depths_at(block_hashes, active, positions, num_slots)
            return np.frombuffer(column, np.float64)

else:
    NativeHolderMap = None  # type: ignore[assignment,misc]


def new_holder_map() -> HolderMap:
    """The compiled map where it was built, else the Python one."""
    return NativeHolderMap() if NativeHolderMap is not None else PyHolderMap()


def implementation() -> str:
    """Which map `new_holder_map` makes: "compiled" or "python"."""
    return "compiled" if NativeHolderMap is not None else "python"
