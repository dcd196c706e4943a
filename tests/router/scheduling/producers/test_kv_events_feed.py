"""apply_batch: proto KV event batches into a KvBlockIndex, snapshots and live, with gaps,
in both tiers (the events' medium)."""

from __future__ import annotations

from typing import cast

from triskel.common.hashing import BlockHash
from triskel.common.kv_tiers import KvMedium
from triskel.router.scheduling.producers.kv_events_feed import apply_batch
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.v1 import worker_pb2

H = [BlockHash(v) for v in (10, 11, 12, 13)]


GPU, HOST = worker_pb2.KV_MEDIUM_GPU, worker_pb2.KV_MEDIUM_HOST
THIRD = cast(worker_pb2.KvMedium, 7)  # a medium this router does not know


def stored(
    event_id: int, block_hashes: list[BlockHash], medium: worker_pb2.KvMedium = GPU
) -> worker_pb2.KvEvent:
    return worker_pb2.KvEvent(
        event_id=event_id,
        stored=worker_pb2.BlocksStored(block_hashes=block_hashes, medium=medium),
    )


def removed(
    event_id: int, block_hashes: list[BlockHash], medium: worker_pb2.KvMedium = GPU
) -> worker_pb2.KvEvent:
    return worker_pb2.KvEvent(
        event_id=event_id,
        removed=worker_pb2.BlocksRemoved(block_hashes=block_hashes, medium=medium),
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


def test_host_events_feed_the_host_tier() -> None:
    index = KvBlockIndex()
    assert apply_batch(index, batch(stored(1, H)))
    # An offloading eviction (GPU removed, HOST stored), then the host tier evicts 13.
    assert apply_batch(index, batch(removed(2, H[2:]), stored(3, H[2:], HOST)))
    assert apply_batch(index, batch(removed(4, H[3:], HOST)))
    assert index.match_tiers(H, ["a"]) == [(2, 1)]
    assert (index.num_blocks("a"), index.num_blocks("a", KvMedium.HOST)) == (2, 1)


def test_a_snapshot_carries_each_tiers_chains() -> None:
    index = KvBlockIndex()
    snapshot = batch(stored(7, H[:1]), stored(7, H[1:], HOST), is_snapshot=True)
    assert apply_batch(index, snapshot)
    assert index.match_tiers(H, ["a"]) == [(1, 3)]
    assert apply_batch(index, batch(removed(8, H[1:2], HOST)))  # ids go on after 7
    assert index.match_tiers(H, ["a"]) == [(1, 0)]


def test_a_gap_across_media_asks_for_a_snapshot() -> None:
    index = KvBlockIndex()
    assert apply_batch(index, batch(stored(1, H[:2])))
    # GPU 2 then HOST 4: event 3 was lost, whatever its medium.
    assert not apply_batch(index, batch(removed(2, H[1:2]), stored(4, H[1:], HOST)))
    assert index.needs_snapshot("a")
    assert index.num_blocks("a", KvMedium.HOST) == 0


def test_an_unknown_medium_takes_its_place_in_the_sequence_and_changes_nothing() -> None:
    # A newer worker's third tier: refusing its events would resubscribe forever.
    index = KvBlockIndex()
    assert apply_batch(index, batch(stored(1, H), removed(2, H, THIRD), stored(3, H, THIRD)))
    snapshot = batch(stored(4, H[:1], THIRD), stored(4, H[1:]), is_snapshot=True)
    assert apply_batch(index, snapshot)
    assert index.match_tiers(H, ["a"]) == [(0, 0)]  # 11.. without 10 in GPU memory
    assert index.num_blocks("a") == 3
    assert apply_batch(index, batch(stored(5, H[:1])))
    assert index.match_tiers(H, ["a"]) == [(4, 0)]
