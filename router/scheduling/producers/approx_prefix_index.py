"""The approximate prefix index: the router's own routing history, no worker events.

After each pick the router records the prompt's block hashes for the chosen
worker, betting that the worker now caches them. Per worker an LRU of
`capacity_blocks_per_worker` hashes bounds memory (llm-d's approximate prefix
cache keeps 31,250 blocks per pod), and entries expire `ttl_s` seconds after
they were last recorded (Dynamo's approximate mode expires after 120 s), since
the worker has likely evicted them by then.

    worker a:  oldest ─► [h7 t=3.0] [h0 t=9.5] [h1 t=9.5] ◄─ newest
    holders:   h0 → {a, b}   h1 → {a}   h7 → {a}      (a HolderMap, see holders)

Recording moves a hash to the newest end with the current time, so each LRU is
ordered by time too: expiry and eviction both pop from the oldest end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.candidates import Candidates, FloatColumn
from triskel.router.scheduling.producers.history_lru import HistoryLru, new_history_lru
from triskel.router.scheduling.producers.holders import new_holder_map
from triskel.router.scheduling.producers.worker_masks import WorkerSlots, match_lengths

LLMD_CAPACITY_BLOCKS_PER_WORKER = 31_250
# Candidates up to which a walk expires them all first rather than its holders after.
_EXPIRE_ALL_UP_TO = 64
DYNAMO_TTL_S = 120.0


class ApproximatePrefixIndex:
    """Which worker was last sent which blocks, with LRU capacity and TTL per worker.

    `clock` returns monotonic seconds (the simulator passes its virtual clock).
    """

    def __init__(
        self,
        clock: Callable[[], float],
        capacity_blocks_per_worker: int = LLMD_CAPACITY_BLOCKS_PER_WORKER,
        ttl_s: float = DYNAMO_TTL_S,
    ) -> None:
        if capacity_blocks_per_worker < 1:
            raise ValueError(
                f"capacity_blocks_per_worker must be >= 1, got {capacity_blocks_per_worker}"
            )
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self._capacity = capacity_blocks_per_worker
        self._ttl_s = ttl_s
        self._clock = clock
        # hash → holders, and per worker hash → time recorded, oldest first (see holders
        # and history_lru: compiled where built; the GC never walks either).
        self._slots = WorkerSlots()
        self._holders = new_holder_map()
        self._lru_of: dict[str, HistoryLru] = {}
        # Workers that left are never matched again; a sweep every TTL frees their entries.
        self._next_sweep_s = clock() + ttl_s

    def record(self, worker_id: str, block_hashes: Sequence[BlockHash]) -> None:
        """Notes that `worker_id` was just sent (and so likely caches) `block_hashes`."""
        now = self._clock()
        if now >= self._next_sweep_s:
            self._sweep(now)
        lru = self._lru_of.get(worker_id)
        if lru is None:
            lru = self._lru_of[worker_id] = new_history_lru(self._holders)
        self._expire(worker_id, lru, now)
        lru.record(block_hashes, now, self._holders, self._slots.assign(worker_id), self._capacity)

    def match_lengths(
        self, block_hashes: Sequence[BlockHash], worker_ids: Sequence[str]
    ) -> list[int]:
        """Leading blocks of `block_hashes` each worker holds, aligned with `worker_ids`.

        Same walk as the precise index: from block 0, a worker stops at its first
        block missing (or expired).
        """
        now = self._clock()
        for worker_id in set(worker_ids):
            lru = self._lru_of.get(worker_id)
            if lru is not None:
                self._expire(worker_id, lru, now)
        return match_lengths(self._holders, block_hashes, worker_ids, self._slots)

    def match_column(
        self, block_hashes: Sequence[BlockHash], candidates: Candidates
    ) -> FloatColumn:
        """`match_lengths` for `candidates` as a column, at a cost that follows the
        prompt's holders, not the candidates.

        Over many candidates, expiry is checked for the holders only: a worker that
        holds none of the prompt cannot change the answer, and its entries expire when
        next read (`record`, another prompt's walk, the sweep) with the same outcome,
        since what has expired depends on the time alone. When a holder had expired
        entries, the walk runs again. Over a few, all expire first (a second walk of a
        long prompt costs more than checking them).
        """
        now = self._clock()
        slots = self._slots
        if len(candidates) <= _EXPIRE_ALL_UP_TO:
            positions = candidates.positions(slots)
            self._expire_slots(positions[positions >= 0].tolist(), now)
        while True:
            positions = candidates.positions(slots)
            column = self._holders.depths_at(
                block_hashes, candidates.mask(slots), positions, slots.num_slots
            )
            # A boolean mask, not column.nonzero(): numpy's nonzero over floats was ~25 µs
            # at 10,000 candidates, the compare and the mask ~3.
            if not self._expire_slots(positions[column != 0].tolist(), now):
                break
        return column

    def _expire_slots(self, slots: Iterable[int], now: float) -> bool:
        """Expires the workers at `slots`; True when any entry expired."""
        oldest_live = now - self._ttl_s
        worker_of = self._slots.worker_of
        expired = False
        for slot in slots:
            worker_id = worker_of(slot)
            if worker_id is None:
                continue
            lru = self._lru_of.get(worker_id)
            if lru is None:
                continue
            oldest = lru.oldest_time()
            if oldest is not None and oldest <= oldest_live:
                lru.expire(oldest_live, self._holders, slot)
                expired = True
        return expired

    def remove_worker(self, worker_id: str) -> None:
        """Forgets everything recorded for `worker_id`."""
        lru = self._lru_of.pop(worker_id, None)
        if lru is not None:
            lru.drop_all(self._holders, self._slots.assign(worker_id))
        self._slots.release(worker_id)

    def num_blocks(self, worker_id: str) -> int:
        """Hashes recorded for `worker_id` (expired ones count until next touched)."""
        return len(self._lru_of.get(worker_id, ()))

    def _sweep(self, now: float) -> None:
        for worker_id, lru in list(self._lru_of.items()):
            self._expire(worker_id, lru, now)
            if not len(lru):
                del self._lru_of[worker_id]
                self._slots.release(worker_id)
        self._next_sweep_s = now + self._ttl_s

    def _expire(self, worker_id: str, lru: HistoryLru, now: float) -> None:
        """Drops the worker's entries older than the TTL (from the oldest on)."""
        lru.expire(now - self._ttl_s, self._holders, self._slots.assign(worker_id))
