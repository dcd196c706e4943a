"""Feeds a `KvBlockIndex` from the workers' `StreamKvEvents` batches (pure, no I/O).

A subscription's first batch is a snapshot (`is_snapshot`): every block the worker
holds, as Stored events numbered with the worker's newest event id, each with the
medium (GPU or host tier) of its chain. Later batches are live events, applied in
order; a worker's GPU and host events share one sequence of ids. `apply_batch`
returns False when the index refused the batch (a gap in event ids, a replay, or a
snapshot holding anything but Stored events); the caller then resubscribes for a
fresh snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable

from triskel.common.hashing import BlockHash
from triskel.common.kv_tiers import KvMedium
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.v1 import worker_pb2

# The wire's media (unset is GPU: workers without a host tier never set it).
_MEDIUM_OF: dict[int, KvMedium] = {
    worker_pb2.KV_MEDIUM_GPU: KvMedium.GPU,
    worker_pb2.KV_MEDIUM_HOST: KvMedium.HOST,
}


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
    chains: dict[KvMedium, list[list[BlockHash]]] = {KvMedium.GPU: [], KvMedium.HOST: []}
    for event in batch.events:
        medium = _MEDIUM_OF.get(event.stored.medium)
        if medium is not None:  # a tier this router does not know holds nothing it can use
            chains[medium].append(_hashes(event.stored.block_hashes))
    # An empty snapshot carries no event id: the index then takes the next live id as given.
    last_event_id = max((event.event_id for event in batch.events), default=None)
    index.apply_snapshot(
        batch.worker_id, chains[KvMedium.GPU], last_event_id, host_chains=chains[KvMedium.HOST]
    )
    return True


def _apply_live(index: KvBlockIndex, worker_id: str, event: worker_pb2.KvEvent) -> bool:
    kind = event.WhichOneof("kind")
    if kind == "stored":
        stored = event.stored
        medium = _MEDIUM_OF.get(stored.medium)
        if medium is None:
            return _skip(index, worker_id, event.event_id)
        return index.apply_stored(worker_id, event.event_id, _hashes(stored.block_hashes), medium)
    if kind == "removed":
        removed = event.removed
        medium = _MEDIUM_OF.get(removed.medium)
        if medium is None:
            return _skip(index, worker_id, event.event_id)
        return index.apply_removed(worker_id, event.event_id, _hashes(removed.block_hashes), medium)
    if kind == "cleared":
        return index.apply_cleared(worker_id, event.event_id)
    # An event kind this router does not know: skipping it could leave the index wrong.
    return False


def _skip(index: KvBlockIndex, worker_id: str, event_id: int) -> bool:
    """An event about a tier this router does not know (a newer worker's): it takes its
    place in the sequence and changes nothing. Refusing it would resubscribe forever."""
    return index.apply_stored(worker_id, event_id, ())


def _hashes(raw: Iterable[int]) -> list[BlockHash]:
    return [BlockHash(value) for value in raw]
