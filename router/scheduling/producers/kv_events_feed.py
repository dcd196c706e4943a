"""Feeds a `KvBlockIndex` from the workers' `StreamKvEvents` batches (pure, no I/O).

A subscription's first batch is a snapshot (`is_snapshot`): every block the worker
holds, as Stored events numbered with the worker's newest event id. Later
batches are live events, applied in order. `apply_batch` returns False when the
index refused the batch (a gap in event ids, a replay, or a snapshot holding
anything but Stored events); the caller then resubscribes for a fresh snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.v1 import worker_pb2


def apply_batch(index: KvBlockIndex, batch: worker_pb2.KvEventBatch) -> bool:
    """Applies `batch` to `index`; False when the caller must resubscribe."""
    if batch.is_snapshot:
        return _apply_snapshot(index, batch)
    worker_id = batch.worker_id
    # all() stops at the first refused event: the rest of the batch would be refused too.
    return all(_apply_live(index, worker_id, event) for event in batch.events)


def _apply_snapshot(index: KvBlockIndex, batch: worker_pb2.KvEventBatch) -> bool:
    if any(event.WhichOneof("kind") != "stored" for event in batch.events):
        return False
    chains = [_hashes(event.stored.block_hashes) for event in batch.events]
    # An empty snapshot carries no event id: the index then takes the next live id as given.
    last_event_id = max((event.event_id for event in batch.events), default=None)
    index.apply_snapshot(batch.worker_id, chains, last_event_id)
    return True


def _apply_live(index: KvBlockIndex, worker_id: str, event: worker_pb2.KvEvent) -> bool:
    kind = event.WhichOneof("kind")
    if kind == "stored":
        return index.apply_stored(worker_id, event.event_id, _hashes(event.stored.block_hashes))
    if kind == "removed":
        return index.apply_removed(worker_id, event.event_id, _hashes(event.removed.block_hashes))
    if kind == "cleared":
        return index.apply_cleared(worker_id, event.event_id)
    # An event kind this router does not know: skipping it could leave the index wrong.
    return False


def _hashes(raw: Iterable[int]) -> list[BlockHash]:
    return [BlockHash(value) for value in raw]
