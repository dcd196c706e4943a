"""Sets of workers as int bitmasks: `block hash → holders` maps the GC never scans.

A prefix index holds one entry per cached block, hundreds of thousands of them.
As `dict[hash, set[str]]` every set is a GC-tracked container, and each full
collection walks them all: tens of milliseconds, landing on whichever pick is
unlucky. As `dict[hash, int]` (one bit per worker slot) the dict holds only
atoms, CPython stops tracking it, and the prefix walk becomes one AND per block:

    slots:    a → 0   b → 1   c → 2
    holders:  h0 → 0b011  h1 → 0b001  h2 → 0b000
    walk {a, b, c}: 0b111 & 0b011 = 0b011 (c stops at 0), & 0b001 (b stops at 1), & 0 (a at 2)

A block held by one worker, most blocks of a large fleet (prompts' own suffixes), is
stored as ~slot, a negative int, not as a mask: a mask is as wide as its highest slot,
~600 bytes at 10,000 workers, where ~slot is 28 (docs/benchmarks.md, "Prefix index
memory"). Readers turn it back into a mask (`as_mask`); writers keep the rule (a mask
only for two holders or more, never 0: no holder, no entry) with `with_holder` and
`without_holder`, inlined where every block passes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from triskel.common.hashing import BlockHash


def as_mask(value: int) -> int:
    """A stored holders value (0 when none) as a mask."""
    return value if value >= 0 else 1 << ~value


def with_holder(value: int, slot: int) -> int:
    """A stored holders value (0 when none) with the worker at `slot` added."""
    if not value:
        return ~slot
    if value > 0:
        return value | (1 << slot)
    return value if ~value == slot else (1 << ~value) | (1 << slot)


def without_holder(value: int, slot: int) -> int:
    """A stored holders value with the worker at `slot` gone (0: nobody holds it now)."""
    if value < 0:
        return 0 if ~value == slot else value
    rest = value & ~(1 << slot)
    if rest & (rest - 1):  # two holders or more: still a mask
        return rest
    return ~(rest.bit_length() - 1) if rest else 0


# Slot changes kept for callers catching up (a change is one worker joining or leaving).
_MAX_CHANGES = 4096


class WorkerSlots:
    """A small integer per worker id; freed slots are reused so masks stay short."""

    __slots__ = (
        "_changes",
        "_first_change",
        "_free",
        "_id_of",
        "_last_ids",
        "_last_mask",
        "_slot_of",
    )

    def __init__(self) -> None:
        self._slot_of: dict[str, int] = {}
        self._id_of: list[str | None] = []
        self._free: list[int] = []
        # The last `mask_of` answer: picks ask for the same candidates again and again,
        # and building a mask walks them all. Dropped whenever a slot changes hands.
        self._last_ids: tuple[str, ...] | None = None
        self._last_mask = 0
        # The latest slot changes, (worker id, its slot or −1 when freed), numbered from
        # `_first_change`: what callers derived from slots (candidates' positions, their
        # mask) catches up with the few changes since, not the whole fleet again.
        self._changes: list[tuple[str, int]] = []
        self._first_change = 0

    def bit(self, worker_id: str) -> int:
        """The worker's bit (1 << slot), assigning a slot on first use."""
        return 1 << self.assign(worker_id)

    def assign(self, worker_id: str) -> int:
        """The worker's slot, assigned on first use."""
        slot = self._slot_of.get(worker_id)
        if slot is None:
            if self._free:
                slot = self._free.pop()
                self._id_of[slot] = worker_id
            else:
                slot = len(self._id_of)
                self._id_of.append(worker_id)
            self._slot_of[worker_id] = slot
            self._changed(worker_id, slot)
        return slot

    def release(self, worker_id: str) -> None:
        """Frees the worker's slot; its bit must already be cleared from every mask."""
        slot = self._slot_of.pop(worker_id, None)
        if slot is not None:
            self._id_of[slot] = None
            self._free.append(slot)
            self._changed(worker_id, -1)

    def _changed(self, worker_id: str, slot: int) -> None:
        self._last_ids = None
        self._changes.append((worker_id, slot))
        if len(self._changes) > _MAX_CHANGES:  # older ones: callers that far behind redo it all
            del self._changes[: _MAX_CHANGES // 2]
            self._first_change += _MAX_CHANGES // 2

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

    @property
    def num_slots(self) -> int:
        """Slots ever assigned (free ones included): every slot is below it."""
        return len(self._id_of)

    @property
    def generation(self) -> int:
        """How many slot changes (assignments and frees) there have been."""
        return self._first_change + len(self._changes)

    def changes_since(self, generation: int) -> Sequence[tuple[str, int]] | None:
        """(worker id, slot or −1 when freed) for each change after `generation`, in
        order; None when they are no longer kept (derive everything again)."""
        if generation < self._first_change:
            return None
        return self._changes[generation - self._first_change :]

    def slot(self, worker_id: str) -> int | None:
        return self._slot_of.get(worker_id)

    def worker_of(self, slot: int) -> str | None:
        """The worker at `slot` (None when the slot is free)."""
        return self._id_of[slot]

    @property
    def slot_of(self) -> Mapping[str, int]:
        """Each known worker's slot (read-only view for hot loops)."""
        return self._slot_of


class DepthWalk(Protocol):
    """A holder map's prefix walk (`holders.HolderMap.depths`)."""

    def depths(
        self, block_hashes: Sequence[BlockHash], active: int, num_slots: int
    ) -> npt.NDArray[np.int64]: ...


def match_lengths(
    holders: DepthWalk,
    block_hashes: Sequence[BlockHash],
    worker_ids: Sequence[str],
    slots: WorkerSlots,
) -> list[int]:
    """Leading blocks of `block_hashes` each worker holds, aligned with `worker_ids`:
    from block 0, a worker stops at its first missing block."""
    depths: list[int] = holders.depths(
        block_hashes, slots.mask_of(worker_ids), slots.num_slots
    ).tolist()
    slot_of = slots.slot_of
    # An unknown worker reads the spare last entry: 0.
    return [depths[slot_of.get(worker_id, -1)] for worker_id in worker_ids]


def holder_depths(
    holders_of: Mapping[BlockHash, int],
    block_hashes: Sequence[BlockHash],
    active: int,
    num_slots: int,
) -> npt.NDArray[np.int64]:
    """Per slot, the leading blocks of `block_hashes` it holds among the slots of the
    mask `active` (0 for the others), plus one spare 0 at the end (index −1 reads it):
    from block 0, a slot stops at its first missing block.

    One AND per block, and a few ORs each time some slots stop: the depth a
    group of slots stops at is written in binary across bit planes (plane b holds the
    slots whose depth has bit b set), and numpy reads the planes out once at the end.
    No Python step per slot: at 10,000 workers, a popular prefix's thousand holders
    cost what a few do (docs/benchmarks.md, "Decision time"). With only a few bits set
    across the planes, a Python step per bit reads them for less than numpy's calls.

        depth 5 = 0b101 for slots {2, 7}:  plane0 |= {2, 7}, plane2 |= {2, 7}
    """
    planes = [0] * len(block_hashes).bit_length()  # enough for the deepest match
    depth = 0
    # A loop that stops once nobody matches: most prompts end their match early, and
    # an AND over every block in C (itertools.accumulate) measured slower.
    for block_hash in block_hashes:
        if not active:
            break
        held = holders_of.get(block_hash, 0)
        still = active & (held if held >= 0 else 1 << ~held)  # see `as_mask`
        if still != active:
            # Slots stopping at block 0 match nothing: the zeros planes start with.
            if depth:
                stopped = active ^ still
                for plane in _planes_of(depth):
                    planes[plane] |= stopped
            active = still
        depth += 1
    if depth and active:
        for plane in _planes_of(depth):
            planes[plane] |= active
    while planes and not planes[-1]:
        planes.pop()
    if sum(plane.bit_count() for plane in planes) <= _PYTHON_READS_UP_TO:
        # Few bits set (a small fleet, or few holders): read in Python. numpy's fixed
        # cost (~6 µs) was most of a walk over four workers.
        few = [0] * (num_slots + 1)
        for bit, plane in enumerate(planes):
            while plane:
                lowest = plane & -plane
                few[lowest.bit_length() - 1] += 1 << bit
                plane ^= lowest
        return np.array(few, dtype=np.int64)
    # Many bits (no planes at all reads in Python above).
    num_bytes = (num_slots + 7) // 8
    packed = b"".join(plane.to_bytes(num_bytes, "little") for plane in planes)
    grid = np.frombuffer(packed, np.uint8).reshape(len(planes), num_bytes)
    bits = np.unpackbits(grid, axis=1, bitorder="little")[:, :num_slots]
    # Float products (exact for these small integers): numpy multiplies integer
    # matrices without BLAS, several times slower.
    weights = np.ldexp(1.0, np.arange(len(planes)))
    depths = np.zeros(num_slots + 1, dtype=np.int64)
    depths[:num_slots] = weights @ bits.astype(np.float64)
    return depths


# Set bits across the planes up to which `holder_depths` reads them in Python (about
# where a step per bit costs what numpy's calls do).
_PYTHON_READS_UP_TO = 24


@functools.lru_cache(maxsize=4096)
def _planes_of(depth: int) -> tuple[int, ...]:
    """The bits set in `depth` (cached: depths repeat from pick to pick)."""
    return tuple(bit for bit in range(depth.bit_length()) if depth >> bit & 1)
