"""apply_batch: proto KV event batches into a KvBlockIndex, snapshots and live, with gaps."""

from __future__ import annotations

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.kv_events_feed import apply_batch
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.v1 import worker_pb2

H = [BlockHash(v) for v in (10, 11, 12, 13)]


def stored(event_id: int, block_hashes: list[BlockHash]) -> worker_pb2.KvEvent:
    return worker_pb2.KvEvent(
        event_id=event_id, stored=worker_pb2.BlocksStored(block_hashes=block_hashes)
    )


def removed(event_id: int, block_hashes: list[BlockHash]) -> worker_pb2.KvEvent:
    return worker_pb2.KvEvent(
        event_id=event_id, removed=worker_pb2.BlocksRemoved(block_hashes=block_hashes)
    )


def batch(*events: worker_pb2.KvEvent, is_snapshot: bool = False) -> worker_pb2.KvEventBatch:
    return worker_pb2.KvEventBatch(worker_id="a", events=events, is_snapshot=is_snapshot)


def test_snapshot_then_live_events() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, [BlockHash(99)])  # stale state the snapshot replaces
    # The worker numbers every snapshot event with its newest id (here 5).
    assert apply_batch(index, batch(stored(5, H[:2]), stored(5, H[:1]), is_snapshot=True))
    assert index.num_blocks("a") == 2
    assert apply_batch(index, batch(stored(6, H[2:]), removed(7, H[:1])))
    assert index.num_blocks("a") == 3
    assert index.match_lengths(H, ["a"]) == [0]  # block 0 removed


def test_gap_inside_a_batch_stops_there_and_asks_for_a_snapshot() -> None:
    index = KvBlockIndex()
    assert apply_batch(index, batch(stored(3, H[:1]), is_snapshot=True))
    assert not apply_batch(index, batch(stored(4, H[1:2]), stored(6, H[2:3]), stored(7, H[3:])))
    # Event 4 applied, 6 refused, 7 never reached.
    assert index.num_blocks("a") == 2
    assert index.needs_snapshot("a")
    assert apply_batch(index, batch(stored(7, H), is_snapshot=True))
    assert not index.needs_snapshot("a")
    assert index.num_blocks("a") == 4


def test_empty_snapshot_accepts_the_next_live_id() -> None:
    index = KvBlockIndex()
    assert apply_batch(index, batch(is_snapshot=True))
    assert apply_batch(index, batch(stored(12, H)))
    assert index.num_blocks("a") == 4


def test_cleared_event() -> None:
    index = KvBlockIndex()
    cleared = worker_pb2.KvEvent(event_id=2, cleared=worker_pb2.AllBlocksCleared())
    assert apply_batch(index, batch(stored(1, H), cleared))
    assert index.num_blocks("a") == 0


def test_malformed_batches_are_refused() -> None:
    index = KvBlockIndex()
    # A snapshot holds only Stored events; an event with no kind cannot be applied safely.
    assert not apply_batch(index, batch(removed(1, H), is_snapshot=True))
    assert not apply_batch(index, batch(worker_pb2.KvEvent(event_id=1)))
