"""Applies every worker's relay stream to this replica's own KV index.

Each worker has a place in its stream: the last entry read, and whether the index
is in step with it. A place is lost when an entry's `prev` is not the last one
read (entries were trimmed away or Redis restarted) or when the index refuses a
batch (a gap in event ids). To get back in step the follower first takes the
stored snapshot if it is newer than its place (a replica starting up does just
this), else asks the holder for a fresh subscription and waits for the snapshot
entry that starts it, asking again every lease TTL in case the holder changed.

    in step ──prev mismatch / refused batch──► lost ──stored snapshot is newer──► in step
       ▲                                          │ else: want a snapshot, keep reading
       └──────── snapshot entry read ◄────────────┘

One blocking read serves all workers, and the index is only touched between
reads, so scheduling never waits on Redis.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from triskel.router.scheduling.producers.kv_events_feed import apply_batch
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.state.config import StateConfig
from triskel.router.state.guard import RedisGuard
from triskel.router.state.kv_relay_store import (
    STREAM_START,
    KvRelayStore,
    RelayEntry,
    StoredSnapshot,
    is_after,
)

_log = logging.getLogger(__name__)

# Entries read per worker per call: bounds one read's reply while a replica catches up.
MAX_ENTRIES_PER_READ = 256


@dataclass(slots=True)
class StreamPlace:
    """How far this replica has followed one worker's stream."""

    entry_id: str = STREAM_START
    is_in_step: bool = False
    # Lost, and the stored snapshot not looked at since.
    needs_lookup: bool = True
    # When this replica last asked the holder for a snapshot (None: not asked).
    wanted_at_s: float | None = None

    def lose(self) -> None:
        self.is_in_step = False
        self.needs_lookup = True
        self.wanted_at_s = None


def apply_entry(index: KvBlockIndex, worker_id: str, place: StreamPlace, entry: RelayEntry) -> None:
    """Applies one stream entry to `index` and moves `place` past it (pure, no I/O)."""
    is_continuous = entry.prev_id == place.entry_id
    place.entry_id = entry.entry_id
    if entry.batch is None:
        # The holder lost the worker: its blocks may be gone with it (as when
        # following directly). The next subscription starts with a snapshot.
        index.remove_worker(worker_id)
        if not is_continuous:
            place.lose()
        return
    if entry.batch.is_snapshot:
        # A snapshot needs nothing before it: it puts a lost place back in step.
        if apply_batch(index, entry.batch):
            place.is_in_step, place.needs_lookup, place.wanted_at_s = True, False, None
        else:
            place.lose()
        return
    if not place.is_in_step:
        return  # waiting for a snapshot; live batches cannot be applied without one
    if not is_continuous or not apply_batch(index, entry.batch):
        _log.warning("KV relay: lost the place in %s's stream; asking for a snapshot", worker_id)
        place.lose()


def take_snapshot(
    index: KvBlockIndex, worker_id: str, place: StreamPlace, snapshot: StoredSnapshot | None
) -> None:
    """Jumps to the stored snapshot when it is newer than `place` (pure, no I/O)."""
    place.needs_lookup = False
    if snapshot is None or not is_after(snapshot.entry_id, place.entry_id):
        return
    if apply_batch(index, snapshot.batch):
        place.entry_id = snapshot.entry_id
        place.is_in_step, place.wanted_at_s = True, None


class KvStreamFollower:
    """Follows the relay streams of the workers it is given into `index`."""

    def __init__(
        self,
        store: KvRelayStore,
        guard: RedisGuard,
        index: KvBlockIndex,
        config: StateConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._guard = guard
        self._index = index
        self._read_block_s = config.kv_read_block_s
        # A holder acts on a request within a third of the TTL, and a new holder
        # starts with a snapshot anyway: asking again after a TTL covers lost requests.
        self._ask_again_after_s = config.kv_lease_ttl_s
        self._clock = clock
        self.places: dict[str, StreamPlace] = {}

    async def run(self, worker_ids: Collection[str]) -> None:
        """Follows from the stored snapshots on; returns as soon as a Redis call fails.

        `worker_ids` is read live: a worker added later is followed from its stored
        snapshot, one removed is dropped before anything more is applied for it.
        """
        self.places = {}
        while not self._guard.is_out:
            self._track(worker_ids)
            await self._get_back_in_step(worker_ids)
            if self._guard.is_out:
                return
            positions = {worker_id: place.entry_id for worker_id, place in self.places.items()}
            if not positions:
                # Nothing to read yet: wait as long as a read would (no Redis call).
                await asyncio.sleep(self._read_block_s)
                continue
            read = functools.partial(
                self._store.read, positions, self._read_block_s, MAX_ENTRIES_PER_READ
            )
            entries = await self._guard.run("kv_relay.read", read, _no_entries)
            for worker_id, worker_entries in entries.items():
                place = self.places.get(worker_id)
                if place is None or worker_id not in worker_ids:
                    continue  # it left while the read was waiting
                for entry in worker_entries:
                    apply_entry(self._index, worker_id, place, entry)

    def _track(self, worker_ids: Collection[str]) -> None:
        for worker_id in worker_ids:
            self.places.setdefault(worker_id, StreamPlace())
        for worker_id in [w for w in self.places if w not in worker_ids]:
            del self.places[worker_id]

    async def _get_back_in_step(self, worker_ids: Collection[str]) -> None:
        lookups = [w for w, place in self.places.items() if place.needs_lookup]
        if lookups:
            snapshots = await self._guard.run(
                "kv_relay.snapshots",
                functools.partial(self._store.snapshots, lookups),
                _no_snapshots,
            )
            if self._guard.is_out:
                return
            for worker_id in (w for w in lookups if w in worker_ids):
                take_snapshot(
                    self._index, worker_id, self.places[worker_id], snapshots.get(worker_id)
                )
        now_s = self._clock()
        for worker_id, place in self.places.items():
            if place.is_in_step or (
                place.wanted_at_s is not None
                and now_s - place.wanted_at_s < self._ask_again_after_s
            ):
                continue
            want = functools.partial(self._store.want_snapshot, worker_id)
            await self._guard.run("kv_relay.want_snapshot", want, _nothing)
            if self._guard.is_out:
                return
            place.wanted_at_s = now_s


def _nothing() -> None:
    return None


def _no_entries() -> dict[str, list[RelayEntry]]:
    return {}


def _no_snapshots() -> dict[str, StoredSnapshot | None]:
    return {}
