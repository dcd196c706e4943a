"""Sets of workers as int bitmasks: `block hash → holders` maps the GC never scans.

A prefix index holds one entry per cached block, hundreds of thousands of them.
As `dict[hash, set[str]]` every set is a GC-tracked container, and each full
collection walks them all: tens of milliseconds, landing on whichever pick is
unlucky. As `dict[hash, int]` (one bit per worker slot) the dict holds only
atoms, CPython stops tracking it, and the prefix walk becomes one AND per block:

    slots:    a → 0   b → 1   c → 2
    holders:  h0 → 0b011  h1 → 0b001  h2 → 0b000
    walk {a, b, c}: 0b111 & 0b011 = 0b011 (c stops at 0), & 0b001 (b stops at 1), & 0 (a at 2)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from triskel.common.hashing import BlockHash


class WorkerSlots:
    """A small integer per worker id; freed slots are reused so masks stay short."""

    __slots__ = ("_free", "_id_of", "_last_ids", "_last_mask", "_slot_of")

    def __init__(self) -> None:
        self._slot_of: dict[str, int] = {}
        self._id_of: list[str | None] = []
        self._free: list[int] = []
        # The last `mask_of` answer: picks ask for the same candidates again and again,
        # and building a mask walks them all. Dropped whenever a slot changes hands.
        self._last_ids: tuple[str, ...] | None = None
        self._last_mask = 0

    def bit(self, worker_id: str) -> int:
        """The worker's bit (1 << slot), assigning a slot on first use."""
        slot = self._slot_of.get(worker_id)
        if slot is None:
            if self._free:
                slot = self._free.pop()
                self._id_of[slot] = worker_id
            else:
                slot = len(self._id_of)
                self._id_of.append(worker_id)
            self._slot_of[worker_id] = slot
            self._last_ids = None
        return 1 << slot

    def release(self, worker_id: str) -> None:
        """Frees the worker's slot; its bit must already be cleared from every mask."""
        slot = self._slot_of.pop(worker_id, None)
        if slot is not None:
            self._id_of[slot] = None
            self._free.append(slot)
            self._last_ids = None

    def mask_of(self, worker_ids: Iterable[str]) -> int:
        """The mask of the known ones among `worker_ids` (unknown ones hold nothing)."""
        ids = tuple(worker_ids)
        if ids == self._last_ids:  # compared in C, mostly by identity
            return self._last_mask
        # Bits set in a bytearray, then one conversion: OR-ing 1 << slot into a growing
        # int would cost a big-int allocation per worker.
        bits = bytearray(self.num_bytes)
        slot_of = self._slot_of
        for worker_id in ids:
            slot = slot_of.get(worker_id)
            if slot is not None:
                bits[slot >> 3] |= 1 << (slot & 7)
        mask = int.from_bytes(bits, "little")
        self._last_ids, self._last_mask = ids, mask
        return mask

    @property
    def num_bytes(self) -> int:
        """Bytes that hold every slot's bit."""
        return (len(self._id_of) + 7) // 8

    def slot(self, worker_id: str) -> int | None:
        return self._slot_of.get(worker_id)

    @property
    def slot_of(self) -> Mapping[str, int]:
        """Each known worker's slot (read-only view for hot loops)."""
        return self._slot_of


def match_lengths(
    holders_of: Mapping[BlockHash, int],
    block_hashes: Sequence[BlockHash],
    worker_ids: Sequence[str],
    slots: WorkerSlots,
) -> list[int]:
    """Leading blocks of `block_hashes` each worker holds, aligned with `worker_ids`:
    from block 0, a worker stops at its first missing block."""
    num_bytes = slots.num_bytes
    active = slots.mask_of(worker_ids)
    depth_of_slot: dict[int, int] = {}
    depth = 0
    for block_hash in block_hashes:
        if not active:
            break
        still = active & holders_of.get(block_hash, 0)
        if still != active:
            # Workers stopping at block 0 match nothing, the default below: at 1,024
            # candidates most of them stop there, and listing them was most of a pick.
            if depth:
                for slot in _slots_in(active ^ still, num_bytes):
                    depth_of_slot[slot] = depth
            active = still
        depth += 1
    if depth:
        for slot in _slots_in(active, num_bytes):
            depth_of_slot[slot] = depth
    if not depth_of_slot:
        return [0] * len(worker_ids)
    slot_of = slots.slot_of
    return [depth_of_slot.get(slot_of.get(worker_id, -1), 0) for worker_id in worker_ids]


def _slots_in(mask: int, num_bytes: int) -> Iterator[int]:
    """The slots whose bit is set, lowest first (bytes, not big-int shifts, per bit)."""
    if not mask:
        return
    for index, byte in enumerate(mask.to_bytes(num_bytes, "little")):
        while byte:
            lowest = byte & -byte
            yield index * 8 + lowest.bit_length() - 1
            byte ^= lowest
