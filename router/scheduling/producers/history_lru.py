"""One worker's routing history: block hash → time recorded, oldest first.

The approximate prefix index keeps one per worker and writes every pick's prompt
blocks into it; each block it holds is a holder in the index's `HolderMap`, so the
LRU adds the worker to a block's holders when it first records it and discards it when
the block leaves (expired, or evicted past the capacity).

Two implementations with the same answers (the tests drive both alike and compare):

- `BlockLru` from `_holder_map.c`, paired with the compiled `HolderMap`: arrays of
  nodes and a table that deletes by backward shift, so nothing is ever compacted.
- `PyBlockLru`: an `OrderedDict`, paired with the Python `HolderMap`. Growing, and
  once full as its deleted entries fill it, it rebuilds its table and node index on
  whichever pick comes then (docs/benchmarks.md, "Where a p99 comes from").
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.holders import HolderMap, NativeHolderMap

try:
    from triskel.router.scheduling.producers._holder_map import BlockLru as BlockLru
except ImportError:  # built without a C compiler
    BlockLru = None  # type: ignore[assignment,misc]


class HistoryLru(Protocol):
    def record(
        self,
        block_hashes: Sequence[BlockHash],
        now: float,
        holders: HolderMap,
        slot: int,
        capacity: int,
    ) -> None:
        """Each hash newest at `now` (a new one added to `holders` at `slot`), then the
        oldest dropped down to `capacity` (each from `holders` too)."""
        ...

    def expire(self, oldest_live: float, holders: HolderMap, slot: int) -> int:
        """Drops the entries recorded at or before `oldest_live`; how many."""
        ...

    def drop_all(self, holders: HolderMap, slot: int) -> None: ...

    def oldest_time(self) -> float | None: ...

    def items(self) -> list[tuple[int, float]]:
        """(hash, time), oldest first."""
        ...

    def __len__(self) -> int: ...


class PyBlockLru:
    """`HistoryLru` as an `OrderedDict`."""

    __slots__ = ("_lru",)

    def __init__(self) -> None:
        self._lru: OrderedDict[BlockHash, float] = OrderedDict()

    def record(
        self,
        block_hashes: Sequence[BlockHash],
        now: float,
        holders: HolderMap,
        slot: int,
        capacity: int,
    ) -> None:
        lru = self._lru
        add = holders.add
        move = lru.move_to_end
        # A known hash is moved, not popped and stored again: each pop leaves a deleted
        # slot in the dict, and once they fill it the dict compacts and the OrderedDict
        # rebuilds its node index, O(LRU size) on the unlucky pick.
        for block_hash in block_hashes:
            if block_hash in lru:
                move(block_hash)
            else:
                add(block_hash, slot)
            lru[block_hash] = now
        num_over = len(lru) - capacity
        if num_over > 0:
            self._drop_oldest(num_over, holders, slot)

    def expire(self, oldest_live: float, holders: HolderMap, slot: int) -> int:
        # Oldest first, so stop at the first live entry: amortised O(1) per entry.
        num_expired = 0
        for recorded in self._lru.values():
            if recorded > oldest_live:
                break
            num_expired += 1
        if num_expired:
            self._drop_oldest(num_expired, holders, slot)
        return num_expired

    def drop_all(self, holders: HolderMap, slot: int) -> None:
        self._drop_oldest(len(self._lru), holders, slot)

    def oldest_time(self) -> float | None:
        return next(iter(self._lru.values()), None)

    def items(self) -> list[tuple[int, float]]:
        return list(self._lru.items())

    def __len__(self) -> int:
        return len(self._lru)

    def _drop_oldest(self, count: int, holders: HolderMap, slot: int) -> None:
        discard = holders.discard
        pop_oldest = self._lru.popitem
        for _ in range(count):
            block_hash, _recorded = pop_oldest(last=False)
            discard(block_hash, slot)


def new_history_lru(holders: HolderMap) -> HistoryLru:
    """An LRU of the kind `holders` is (the compiled one writes the compiled map)."""
    compiled = NativeHolderMap is not None and isinstance(holders, NativeHolderMap)
    return BlockLru() if compiled and BlockLru is not None else PyBlockLru()
