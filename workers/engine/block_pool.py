"""A fixed pool of paged KV blocks with reference counts and a prefix cache.

Every block is in exactly one of three states:

    in use      ref_count > 0 (held by running, loading or held requests)
    evictable   ref_count == 0 and cached: still served as a prefix hit, and
                evicted (least recently freed first) when fresh blocks run out
    empty       ref_count == 0 and not cached: handed out before any eviction

Full blocks are cached under their chained hash (`triskel.common.hashing`).
Caching a block emits `BlocksStored`, evicting one `BlocksRemoved`; events are
queued here until `drain_events`. With a host tier (`host_tier.HostTier`) an
evicted block is offloaded there rather than lost: the same event sequence then
also reports it stored, and the blocks the tier drops removed, with medium HOST.
If two requests compute the same block at the same time, the second copy stays
uncached (the hash already names a block).

The design follows vLLM v1's BlockPool (refcounts, hash → block map, LRU free
queue); keeping empty blocks apart from evictable ones is our change, so a cached
prefix is never evicted while empty blocks remain.

The capacity can change while requests run (an elastic EP group gaining or losing
ranks, `resize`). Growing adds blocks after the highest id so far. Shrinking takes no
block from a request: it holds back empty blocks so that in-use plus cached blocks fit
the new capacity, evicting cached ones to get there. If more blocks are in use than
the new capacity, the pool DRAINS, as departing ranks finish their own sequences:
nothing is admitted (`can_allocate`), while running requests may still grow into the
held-back blocks (`can_extend`), so nothing running is stopped or preempted. Draining
ends once the blocks in use fit the capacity; from then on both checks are the same,
and the pool is simply smaller (KV pressure preempts, as ever).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from itertools import repeat, starmap, takewhile

from triskel.common.hashing import BlockHash
from triskel.common.kv_tiers import KvMedium
from triskel.workers.engine.chains import chain_runs, chains_of
from triskel.workers.engine.events import BlocksRemoved, BlocksStored, KvEvent
from triskel.workers.engine.eviction_queue import EvictionQueue
from triskel.workers.engine.host_tier import HostTier


class BlockPool:
    """`num_blocks` KV blocks (the capacity), numbered from 0; ids stay below
    `num_physical_blocks`. `host`: the host tier evicted blocks go to (None: none)."""

    __slots__ = (
        "_block_hashes",
        "_block_of_hash",
        "_empty",
        "_events",
        "_evictable",
        "_host",
        "_is_draining",
        "_next_event_id",
        "_num_held_back",
        "_parent_hashes",
        "_ref_counts",
        "num_blocks",
    )

    def __init__(self, num_blocks: int, host: HostTier | None = None) -> None:
        if num_blocks < 1:
            raise ValueError(f"num_blocks: must be >= 1, got {num_blocks}")
        self.num_blocks = num_blocks
        self._host = host
        self._ref_counts = [0] * num_blocks
        self._block_hashes: list[BlockHash | None] = [None] * num_blocks
        self._block_of_hash: dict[BlockHash, int] = {}
        # Parent hash of each cached block (None: a sequence's block 0), kept per block
        # id so caching and evicting touch one dict, not two; stale once uncached.
        self._parent_hashes: list[BlockHash | None] = [None] * num_blocks
        self._empty: deque[int] = deque(range(num_blocks))
        self._evictable = EvictionQueue(num_blocks)
        # Empty blocks past the capacity after a shrink, and whether running requests may
        # still take them (see the module docstring).
        self._num_held_back = 0
        self._is_draining = False
        self._events: list[KvEvent] = []
        self._next_event_id = 1

    # -- counts -----------------------------------------------------------------

    @property
    def num_free_blocks(self) -> int:
        """Blocks an allocation can take (empty plus evictable, within the capacity)."""
        num_free = len(self._empty) + self._evictable.num_blocks - self._num_held_back
        return num_free if num_free > 0 else 0

    @property
    def num_cached_blocks(self) -> int:
        return len(self._block_of_hash)

    @property
    def usage(self) -> float:
        """Share of blocks referenced by live requests, 0..1 (evictable counts as free)."""
        return 1.0 - self.num_free_blocks / self.num_blocks

    def ref_count(self, block_id: int) -> int:
        return self._ref_counts[block_id]

    def is_cached(self, block_id: int) -> bool:
        return self._block_hashes[block_id] is not None

    # -- prefix lookup ----------------------------------------------------------

    def find_cached_prefix(self, block_hashes: Sequence[BlockHash]) -> list[int]:
        """Blocks caching the longest run of `block_hashes` from block 0 (no refcount change)."""
        get = self._block_of_hash.get
        block_ids: list[int] = []
        for block_hash in block_hashes:
            block_id = get(block_hash)
            if block_id is None:
                break
            block_ids.append(block_id)
        return block_ids

    def num_cached_prefix(self, block_hashes: Iterable[BlockHash]) -> int:
        """Length of the longest run of `block_hashes` from block 0 that is cached."""
        # takewhile walks in C: shared prompts match hundreds of blocks, at every pick.
        return len(list(takewhile(self._block_of_hash.__contains__, block_hashes)))

    def num_evictable(self, block_ids: Iterable[int]) -> int:
        """How many of `block_ids` are unreferenced (touching them takes free blocks)."""
        return sum(1 for block_id in block_ids if self._ref_counts[block_id] == 0)

    def touch(self, block_ids: Iterable[int]) -> None:
        """Takes a reference on cache-hit blocks, pulling evictable ones out of the LRU."""
        for block_id in block_ids:
            if self._ref_counts[block_id] == 0:
                self._evictable.remove(block_id)
            self._ref_counts[block_id] += 1

    # -- allocation -------------------------------------------------------------

    def can_allocate(self, num_blocks: int) -> bool:
        """Whether `num_blocks` fit within the capacity (what admission asks)."""
        return num_blocks <= self.num_free_blocks

    def can_extend(self, num_blocks: int) -> bool:
        """Whether a running request can grow by `num_blocks`: while the pool drains
        after a shrink, into the held-back blocks too."""
        num_free = len(self._empty) + self._evictable.num_blocks
        if not self._is_draining:
            num_free -= self._num_held_back
        return num_blocks <= num_free

    def allocate(self, num_blocks: int) -> list[int]:
        """`num_blocks` fresh blocks with one reference each, evicting cached ones if needed.

        Raises ValueError when fewer blocks are free (check `can_allocate` first, or
        `can_extend` for a running request).
        """
        empty = self._empty
        evictable = self._evictable
        num_held_back = self._num_held_back
        num_free = len(empty) + evictable.num_blocks
        if not self._is_draining:
            num_free -= num_held_back
        if num_blocks > num_free:
            raise ValueError(f"num_blocks: {num_blocks} requested but only {max(0, num_free)} free")
        # Empty blocks first, then the least recently freed cached ones, then (a running
        # request while the pool drains) held-back ones. Whole runs at a time: a prefill
        # takes hundreds of blocks per step and this is its hot loop.
        num_from_empty = len(empty) - num_held_back
        if num_from_empty >= num_blocks:
            block_ids = _pop_left(empty, num_blocks)
        else:
            block_ids = _pop_left(empty, max(0, num_from_empty))
            num_to_evict = min(num_blocks - len(block_ids), evictable.num_blocks)
            if num_to_evict:
                evicted_ids = evictable.pop(num_to_evict)
                self._evict(evicted_ids)
                block_ids += evicted_ids
            block_ids += _pop_left(empty, num_blocks - len(block_ids))
        ref_counts = self._ref_counts
        for block_id in block_ids:
            ref_counts[block_id] = 1
        return block_ids

    def free(self, block_ids: Iterable[int]) -> None:
        """Drops one reference per block, in the given order.

        Blocks reaching zero references become evictable (if cached) or empty;
        callers pass a request's blocks last-first, so a prefix's tail is evicted
        before its head (as vLLM does).
        """
        ref_counts = self._ref_counts
        block_hashes = self._block_hashes
        append_empty = self._empty.append
        newly_evictable: list[int] = []  # queued in one run, in the order they were freed
        try:
            for block_id in block_ids:
                ref_count = ref_counts[block_id]
                if ref_count <= 0:
                    raise ValueError(f"block_ids: block {block_id} is already free")
                ref_counts[block_id] = ref_count - 1
                if ref_count == 1:
                    if block_hashes[block_id] is None:
                        append_empty(block_id)
                    else:
                        newly_evictable.append(block_id)
        finally:
            self._evictable.push(newly_evictable)
        if self._num_held_back:
            if self._is_draining and self.num_blocks_in_use <= self.num_blocks:
                self._is_draining = False
            self._fit_capacity()

    # -- capacity ---------------------------------------------------------------

    def resize(self, num_blocks: int) -> None:
        """Changes the capacity to `num_blocks` blocks (see the module docstring)."""
        if num_blocks < 1:
            raise ValueError(f"num_blocks: must be >= 1, got {num_blocks}")
        num_physical = len(self._ref_counts)
        if num_blocks > num_physical:
            num_new = num_blocks - num_physical
            self._ref_counts.extend([0] * num_new)
            self._block_hashes.extend([None] * num_new)
            self._parent_hashes.extend([None] * num_new)
            self._evictable.grow(num_blocks)
            self._empty.extend(range(num_physical, num_blocks))
            num_physical = num_blocks
        self.num_blocks = num_blocks
        self._num_held_back = num_physical - num_blocks
        self._is_draining = self.num_blocks_in_use > num_blocks
        self._fit_capacity()

    @property
    def num_blocks_in_use(self) -> int:
        """Blocks referenced by requests (past the capacity while the pool drains)."""
        return len(self._ref_counts) - len(self._empty) - self._evictable.num_blocks

    @property
    def is_draining(self) -> bool:
        return self._is_draining

    @property
    def num_physical_blocks(self) -> int:
        """Block ids handed out so far are below this (the most the pool ever held)."""
        return len(self._ref_counts)

    def _fit_capacity(self) -> None:
        """Evicts cached blocks until the held-back ones are all empty (in-use plus
        cached blocks fit the capacity), or nothing cached is left."""
        num_short = self._num_held_back - len(self._empty)
        num_to_evict = min(num_short, self._evictable.num_blocks)
        if num_to_evict > 0:
            evicted_ids = self._evictable.pop(num_to_evict)
            self._evict(evicted_ids)
            self._empty.extend(evicted_ids)

    # -- caching ----------------------------------------------------------------

    def cache_blocks(
        self,
        block_ids: Sequence[int],
        block_hashes: Sequence[BlockHash],
        parent_hash: BlockHash | None,
    ) -> None:
        """Caches consecutive full blocks of one sequence under their chained hashes.

        `parent_hash` is the hash of the block before `block_ids[0]` (None for
        block 0). Blocks already cached, and blocks whose hash another block
        already caches, are skipped; each run of newly cached blocks is one
        `BlocksStored` event.
        """
        if len(block_ids) != len(block_hashes):
            raise ValueError(
                f"block_hashes: {len(block_hashes)} hashes for {len(block_ids)} blocks"
            )
        hash_of_block = self._block_hashes
        # setdefault claims a hash no other block caches, in one lookup (the hot loop of
        # every prefill and KV load): it returns `block_id` exactly when the claim held.
        claim = self._block_of_hash.setdefault
        parent_hashes = self._parent_hashes
        run: list[BlockHash] = []
        run_parent = parent_hash
        previous = parent_hash
        for block_id, block_hash in zip(block_ids, block_hashes, strict=True):
            if hash_of_block[block_id] is None and claim(block_hash, block_id) == block_id:
                if not run:
                    run_parent = previous
                hash_of_block[block_id] = block_hash
                parent_hashes[block_id] = previous
                run.append(block_hash)
            elif run:
                self._emit(BlocksStored(self._next_event_id, tuple(run), run_parent))
                run = []
            previous = block_hash
        if run:
            self._emit(BlocksStored(self._next_event_id, tuple(run), run_parent))

    def _evict(self, block_ids: list[int]) -> None:
        """Uncaches evictable `block_ids`, offloading them to the host tier if there is one."""
        block_hashes = self._uncache(block_ids)
        self._emit(BlocksRemoved(self._next_event_id, block_hashes))
        host = self._host
        if host is None:
            return
        # Parents are read after uncaching on purpose: a block's parent entry is only
        # overwritten when the block is cached again.
        parents = [self._parent_hashes[block_id] for block_id in block_ids]
        # Freed tail first, so evicted tail first: offloaded in that order a prefix's head
        # also leaves the host tier last; reversed, a request's run is one chain.
        stored, removed = host.offload(block_hashes, parents)
        for run, parent in chain_runs(stored[::-1]):
            self._emit(BlocksStored(self._next_event_id, tuple(run), parent, KvMedium.HOST))
        if removed:
            self._emit(BlocksRemoved(self._next_event_id, tuple(removed), KvMedium.HOST))

    def _uncache(self, block_ids: list[int]) -> tuple[BlockHash, ...]:
        """Forgets the hashes of cached `block_ids` (evictable ones); returns them in order."""
        hash_of_block = self._block_hashes
        block_of_hash = self._block_of_hash
        block_hashes: list[BlockHash] = []
        for block_id in block_ids:
            block_hash = hash_of_block[block_id]
            if block_hash is None:
                raise ValueError(f"block_ids: block {block_id} is not cached")
            hash_of_block[block_id] = None
            del block_of_hash[block_hash]
            block_hashes.append(block_hash)
        return tuple(block_hashes)

    # -- events and snapshots ---------------------------------------------------

    def _emit(self, event: KvEvent) -> None:
        self._events.append(event)
        self._next_event_id += 1

    def drain_events(self) -> list[KvEvent]:
        """Events since the last drain, oldest first."""
        events, self._events = self._events, []
        return events

    @property
    def last_event_id(self) -> int:
        """Id of the newest event emitted (0 before any)."""
        return self._next_event_id - 1

    def cached_block_chains(self) -> list[list[BlockHash]]:
        """Every cached block, as root-to-leaf chains (a snapshot for new subscribers)."""
        block_of = self._block_of_hash
        parents = self._parent_hashes
        return chains_of({block_hash: parents[block] for block_hash, block in block_of.items()})

    @property
    def host(self) -> HostTier | None:
        return self._host


def _pop_left(queue: deque[int], count: int) -> list[int]:
    """The first `count` ids of `queue`, removed; popleft is called from C (starmap), a
    third faster than a comprehension over hundreds of blocks."""
    return list(starmap(queue.popleft, repeat((), count)))
