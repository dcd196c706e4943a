"""The precise KV index: which worker holds which block, from the workers' KV events.

Each worker publishes numbered events (ids increase by one): blocks stored,
blocks removed, cache cleared. A new subscription starts with a snapshot of every
block the worker holds. The index applies a worker's events strictly in order;
an id that is not the last one plus one (a gap, or a replay) is refused and the
worker is marked as needing a snapshot, which the caller gets by resubscribing.
This is Dynamo's KV indexer protocol (gap detection, full dump on reconnect) and
llm-d's precise prefix index (events applied per pod, in order).

Block hashes are chained (each covers its whole prefix, see triskel.common.hashing),
so a flat map `hash → workers` answers prefix matches as a radix tree would:

    prompt:   h0 ─ h1 ─ h2 ─ h3
    holders:  {a,b} {a,b} {a}  {}      → match lengths a: 3, b: 2, c: 0

A worker with a host KV tier (vLLM CPU offload, LMCache, SGLang HiCache) also
reports the blocks it offloads to host memory, as events of medium HOST in the
same numbered sequence; the index keeps them in a second map. A prompt's host hit
is what continues there after its GPU prefix (the GPU's copy is used as is, the
host's must be loaded back first):

    prompt:   h0 ─ h1 ─ h2 ─ h3 ─ h4
    GPU:      a    a                      → a: g = 2
    host:     a         a    a            → a: h = 2 (h2, h3 after the GPU prefix)

Storage sits behind `BlockLocations`, so a shared backend (Redis, for several
router replicas) can replace the in-memory map without touching callers. The
event cursors stay here: they belong to this router's subscriptions, one
sequence per worker whatever the medium.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from triskel.common.hashing import BlockHash
from triskel.common.kv_tiers import KvMedium
from triskel.router.scheduling.candidates import Candidates, FloatColumn
from triskel.router.scheduling.producers.holders import HolderMap, new_holder_map
from triskel.router.scheduling.producers.worker_blocks import WorkerBlocks, new_worker_blocks
from triskel.router.scheduling.producers.worker_masks import WorkerSlots, match_lengths


class BlockLocations(Protocol):
    """Storage of `block hash → workers holding it`.

    Contract: `add` / `discard` are idempotent per (worker, hash); `match_lengths`
    gives, per worker id in order, how many leading blocks of `block_hashes` it
    holds (it stops at a worker's first missing block: a later block cannot be
    reused without the ones before it).
    """

    def add(self, worker_id: str, block_hashes: Iterable[BlockHash]) -> None: ...

    def discard(self, worker_id: str, block_hashes: Iterable[BlockHash]) -> None: ...

    def clear_worker(self, worker_id: str) -> None: ...

    def match_lengths(
        self, block_hashes: Sequence[BlockHash], worker_ids: Sequence[str]
    ) -> list[int]: ...

    def match_from(
        self, block_hashes: Sequence[BlockHash], starts: Sequence[int], worker_ids: Sequence[str]
    ) -> list[int]:
        """Per worker id in order, how many leading blocks of `block_hashes[start:]` it
        holds, `starts` aligned with `worker_ids` (a start past the end gives 0; a worker
        id given twice is given the same start). `match_lengths` with every start 0."""
        ...

    def match_column(
        self, block_hashes: Sequence[BlockHash], candidates: Candidates
    ) -> FloatColumn:
        """`match_lengths` for the candidates, as a column (the scorers' hot path)."""
        ...

    def match_from_column(
        self, block_hashes: Sequence[BlockHash], starts: FloatColumn, candidates: Candidates
    ) -> FloatColumn:
        """`match_from` for the candidates, `starts` a column aligned with them."""
        ...

    def num_blocks(self, worker_id: str) -> int: ...


def lengths_column(lengths: Sequence[int]) -> FloatColumn:
    """Aligned match lengths as a column (for stores without a column walk of their own)."""
    return np.fromiter(lengths, np.float64, len(lengths))


class InMemoryBlockLocations:
    """`BlockLocations` in memory: hash → holders in a `HolderMap`, and each worker's
    blocks (for removal) in a `WorkerBlocks`; compiled where built, and either way
    nothing the GC walks."""

    __slots__ = ("_blocks_of", "_holders", "_slots")

    def __init__(self, holders: HolderMap | None = None) -> None:
        self._slots = WorkerSlots()
        self._holders = holders if holders is not None else new_holder_map()
        self._blocks_of: dict[str, WorkerBlocks] = {}

    def add(self, worker_id: str, block_hashes: Iterable[BlockHash]) -> None:
        slot = self._slots.assign(worker_id)
        blocks = self._blocks_of.get(worker_id)
        if blocks is None:
            blocks = self._blocks_of[worker_id] = new_worker_blocks(self._holders)
        blocks.add_all(block_hashes, self._holders, slot)

    def discard(self, worker_id: str, block_hashes: Iterable[BlockHash]) -> None:
        blocks = self._blocks_of.get(worker_id)
        if blocks is None:
            return
        blocks.discard_all(block_hashes, self._holders, self._slots.assign(worker_id))

    def clear_worker(self, worker_id: str) -> None:
        blocks = self._blocks_of.pop(worker_id, None)
        if blocks is None:
            return
        blocks.drop_all(self._holders, self._slots.assign(worker_id))
        self._slots.release(worker_id)

    def match_lengths(
        self, block_hashes: Sequence[BlockHash], worker_ids: Sequence[str]
    ) -> list[int]:
        return match_lengths(self._holders, block_hashes, worker_ids, self._slots)

    def match_column(
        self, block_hashes: Sequence[BlockHash], candidates: Candidates
    ) -> FloatColumn:
        # Only the holders of block 0 are ever listed: the cost follows them, not the fleet.
        slots = self._slots
        return self._holders.depths_at(
            block_hashes, candidates.mask(slots), candidates.positions(slots), slots.num_slots
        )

    def match_from_column(
        self, block_hashes: Sequence[BlockHash], starts: FloatColumn, candidates: Candidates
    ) -> FloatColumn:
        if not self._blocks_of:
            return np.zeros(len(candidates))  # the tier is empty: a router without host tiers
        # A walk per candidate's start: what a host tier costs is not yet columnar.
        return lengths_column(
            self.match_from(block_hashes, starts.astype(np.int64).tolist(), candidates.worker_ids)
        )

    def match_from(
        self, block_hashes: Sequence[BlockHash], starts: Sequence[int], worker_ids: Sequence[str]
    ) -> list[int]:
        # One walk for all workers: each joins the active mask at its start and leaves
        # it at its first missing block. Workers that hold nothing here (no slot) never
        # join, so a tier empty for these workers costs one slot lookup each.
        if not self._blocks_of:
            return [0] * len(worker_ids)  # the tier is empty: a router without host tiers
        slot_of = self._slots.slot
        num_blocks = len(block_hashes)
        joining: dict[int, int] = {}  # position → mask of the workers starting there
        start_of: dict[int, int] = {}  # slot → its start
        for worker_id, start in zip(worker_ids, starts, strict=True):
            slot = slot_of(worker_id)
            if slot is not None and start < num_blocks:
                joining[start] = joining.get(start, 0) | (1 << slot)
                start_of[slot] = start
        length_of: dict[int, int] = {}
        pending = sorted(joining, reverse=True)  # next join position last
        holders = self._holders
        active = 0
        position = pending[-1] if pending else num_blocks
        while position < num_blocks:
            if pending and pending[-1] == position:
                active |= joining[pending.pop()]
            elif not active:
                if not pending:
                    break
                position = pending[-1]
                continue
            still = active & holders.mask(block_hashes[position])
            if still != active:
                for slot in _slots_of(active ^ still):
                    length_of[slot] = position - start_of[slot]
                active = still
            position += 1
        for slot in _slots_of(active):
            length_of[slot] = num_blocks - start_of[slot]
        lengths = []
        for worker_id in worker_ids:
            slot = slot_of(worker_id)
            lengths.append(0 if slot is None else length_of.get(slot, 0))
        return lengths

    def num_blocks(self, worker_id: str) -> int:
        return len(self._blocks_of.get(worker_id, ()))


def _slots_of(mask: int) -> Iterator[int]:
    """The set bits of `mask`, lowest first."""
    while mask:
        lowest = mask & -mask
        yield lowest.bit_length() - 1
        mask ^= lowest


@dataclass(slots=True)
class _Cursor:
    """How far a worker's event stream has been applied."""

    # None: unknown (an empty snapshot carries no id); the next live event sets it.
    last_event_id: int | None
    needs_snapshot: bool = False


class KvBlockIndex:
    """Which worker holds which KV block, per tier, kept current from each worker's KV events.

    A worker never seen is taken to be at event 0 (workers number events from 1).
    Events refused out of order leave the worker's last known blocks in place
    (stale but mostly right) until a snapshot replaces them. `locations` holds the
    GPU tier, `host_locations` the host tier (each a new in-memory map when None).
    """

    def __init__(
        self,
        locations: BlockLocations | None = None,
        host_locations: BlockLocations | None = None,
    ) -> None:
        self._locations: BlockLocations = (
            locations if locations is not None else InMemoryBlockLocations()
        )
        self._host_locations: BlockLocations = (
            host_locations if host_locations is not None else InMemoryBlockLocations()
        )
        self._cursors: dict[str, _Cursor] = {}

    def apply_snapshot(
        self,
        worker_id: str,
        chains: Sequence[Sequence[BlockHash]],
        last_event_id: int | None,
        host_chains: Sequence[Sequence[BlockHash]] = (),
    ) -> None:
        """Replaces everything known about `worker_id` with `chains` (its GPU tier)
        and `host_chains` (its host tier).

        `last_event_id` is the id of the worker's newest event the snapshot covers;
        None when unknown (the next live event is then accepted whatever its id).
        """
        for locations, tier_chains in (
            (self._locations, chains),
            (self._host_locations, host_chains),
        ):
            locations.clear_worker(worker_id)
            for chain in tier_chains:
                locations.add(worker_id, chain)
        self._cursors[worker_id] = _Cursor(last_event_id)

    def apply_stored(
        self,
        worker_id: str,
        event_id: int,
        block_hashes: Sequence[BlockHash],
        medium: KvMedium = KvMedium.GPU,
    ) -> bool:
        """Records that `worker_id` now holds `block_hashes` in `medium`; False (ignored)
        if out of order."""
        if not self._advance(worker_id, event_id):
            return False
        self._tier(medium).add(worker_id, block_hashes)
        return True

    def apply_removed(
        self,
        worker_id: str,
        event_id: int,
        block_hashes: Sequence[BlockHash],
        medium: KvMedium = KvMedium.GPU,
    ) -> bool:
        """Records that `worker_id` evicted `block_hashes` from `medium` (the other tier
        keeps its copies); False (ignored) if out of order."""
        if not self._advance(worker_id, event_id):
            return False
        self._tier(medium).discard(worker_id, block_hashes)
        return True

    def apply_cleared(self, worker_id: str, event_id: int) -> bool:
        """Records that `worker_id` dropped its whole cache, both tiers; False (ignored)
        if out of order."""
        if not self._advance(worker_id, event_id):
            return False
        self._locations.clear_worker(worker_id)
        self._host_locations.clear_worker(worker_id)
        return True

    def needs_snapshot(self, worker_id: str) -> bool:
        """True from a refused event until the next `apply_snapshot` for `worker_id`."""
        cursor = self._cursors.get(worker_id)
        return cursor is not None and cursor.needs_snapshot

    def remove_worker(self, worker_id: str) -> None:
        """Forgets `worker_id`: its blocks in both tiers and its event cursor."""
        self._locations.clear_worker(worker_id)
        self._host_locations.clear_worker(worker_id)
        self._cursors.pop(worker_id, None)

    def match_lengths(
        self, block_hashes: Sequence[BlockHash], worker_ids: Sequence[str]
    ) -> list[int]:
        """Leading blocks of `block_hashes` each worker holds, aligned with `worker_ids`.

        Walks from block 0 and stops for a worker at its first missing block (a
        later block it holds cannot be reused without the ones before it).
        """
        return self._locations.match_lengths(block_hashes, worker_ids)

    def match_tiers(
        self, block_hashes: Sequence[BlockHash], worker_ids: Sequence[str]
    ) -> list[tuple[int, int]]:
        """Per worker, aligned with `worker_ids`: (g, h), g the leading blocks of
        `block_hashes` it holds in GPU memory (as `match_lengths`), h how many of the
        blocks after those continue in its host tier (0 when none do).

        On the router's hot path: one GPU walk for every worker, then one host walk
        from each worker's g on (workers whose GPU prefix covers the prompt skip it).
        """
        gpu_lengths = self._locations.match_lengths(block_hashes, worker_ids)
        host_lengths = self._host_locations.match_from(block_hashes, gpu_lengths, worker_ids)
        return list(zip(gpu_lengths, host_lengths, strict=True))

    def match_tier_columns(
        self, block_hashes: Sequence[BlockHash], candidates: Candidates
    ) -> tuple[FloatColumn, FloatColumn]:
        """`match_tiers` for the candidates, as columns (g, h)."""
        gpu = self._locations.match_column(block_hashes, candidates)
        return gpu, self._host_locations.match_from_column(block_hashes, gpu, candidates)

    def num_blocks(self, worker_id: str, medium: KvMedium = KvMedium.GPU) -> int:
        """Blocks `worker_id` holds in `medium`, per its events."""
        return self._tier(medium).num_blocks(worker_id)

    def _tier(self, medium: KvMedium) -> BlockLocations:
        return self._host_locations if medium is KvMedium.HOST else self._locations

    def _advance(self, worker_id: str, event_id: int) -> bool:
        """Moves the worker's cursor to `event_id` if it is the next one expected."""
        cursor = self._cursors.get(worker_id)
        if cursor is None:
            cursor = self._cursors[worker_id] = _Cursor(last_event_id=0)
        if cursor.needs_snapshot:
            return False
        if cursor.last_event_id is not None and event_id != cursor.last_event_id + 1:
            cursor.needs_snapshot = True
            return False
        cursor.last_event_id = event_id
        return True
