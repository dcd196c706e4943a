"""KvBlockIndex: in-order events, gaps and replays, snapshots, prefix match walking."""

from __future__ import annotations

import pytest

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.kv_index import InMemoryBlockLocations, KvBlockIndex


def hashes(*values: int) -> list[BlockHash]:
    return [BlockHash(v) for v in values]


H = hashes(10, 11, 12, 13)


def test_events_in_order_are_applied() -> None:
    index = KvBlockIndex()
    # A worker never seen is at event 0, so its first event is 1.
    assert index.apply_stored("a", 1, H[:3])
    assert index.apply_removed("a", 2, H[2:3])
    assert index.apply_stored("a", 3, H[3:])
    assert index.num_blocks("a") == 3
    assert not index.needs_snapshot("a")


@pytest.mark.parametrize(
    "event_id",
    [
        pytest.param(3, id="gap"),  # 2 was lost
        pytest.param(1, id="replay"),  # already applied
        pytest.param(0, id="before-start"),
    ],
)
def test_out_of_order_event_is_ignored_until_a_snapshot(event_id: int) -> None:
    index = KvBlockIndex()
    assert index.apply_stored("a", 1, H[:1])
    assert not index.apply_stored("a", event_id, H[1:2])
    assert index.needs_snapshot("a")
    assert index.num_blocks("a") == 1
    # Even the id that would have been next is refused: the stream is untrusted now.
    assert not index.apply_removed("a", 2, H[:1])
    assert index.num_blocks("a") == 1
    index.apply_snapshot("a", [H[:2]], last_event_id=7)
    assert not index.needs_snapshot("a")
    assert index.apply_stored("a", 8, H[2:3])
    assert index.num_blocks("a") == 3


def test_a_gap_on_one_worker_leaves_the_others_alone() -> None:
    index = KvBlockIndex()
    assert not index.apply_stored("a", 5, H[:1])
    assert index.apply_stored("b", 1, H[:1])
    assert (index.needs_snapshot("a"), index.needs_snapshot("b")) == (True, False)


def test_snapshot_replaces_everything_known_about_the_worker() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, H)
    index.apply_stored("b", 1, H[:2])
    index.apply_snapshot("a", [hashes(10, 11), hashes(10, 20)], last_event_id=9)
    # 10 appears in both chains (a shared prefix) but is one block.
    assert index.num_blocks("a") == 3
    assert index.match_lengths(H, ["a", "b"]) == [2, 2]
    assert index.match_lengths(hashes(10, 20), ["a", "b"]) == [2, 1]
    assert not index.apply_stored("a", 9, H[2:3])  # the snapshot covered event 9


def test_snapshot_without_event_id_accepts_the_next_live_event() -> None:
    index = KvBlockIndex()
    index.apply_snapshot("a", [], last_event_id=None)
    assert index.apply_stored("a", 42, H[:1])
    assert not index.apply_stored("a", 44, H[1:2])  # after that, strict again


def test_cleared_drops_all_blocks() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, H)
    assert index.apply_cleared("a", 2)
    assert index.num_blocks("a") == 0
    assert index.match_lengths(H, ["a"]) == [0]


def test_remove_worker_forgets_blocks_and_cursor() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, H)
    assert not index.apply_stored("a", 5, H)
    index.remove_worker("a")
    assert index.num_blocks("a") == 0
    assert not index.needs_snapshot("a")
    assert index.apply_stored("a", 1, H[:1])  # starts over from event 0


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        pytest.param(H, 4, id="all"),
        pytest.param(H[:2], 2, id="leading-two"),
        # Blocks 1..3 without block 0 are useless: the walk stops at the first miss.
        pytest.param(H[1:], 0, id="missing-first"),
        pytest.param([H[0], H[1], H[3]], 2, id="hole-at-2"),
        pytest.param([], 0, id="none"),
    ],
)
def test_match_walk_stops_at_first_missing_block(held: list[BlockHash], expected: int) -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, held)
    assert index.match_lengths(H, ["a"]) == [expected]


def test_match_lengths_align_with_worker_ids() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, H[:3])
    index.apply_stored("b", 1, H[:1])
    index.apply_stored("c", 1, H)
    # Unknown workers match nothing; duplicates repeat; order follows the argument.
    assert index.match_lengths(H, ["c", "x", "a", "b", "a"]) == [4, 0, 3, 1, 3]
    assert index.match_lengths([], ["a", "b"]) == [0, 0]
    assert index.match_lengths(H, []) == []


def test_removed_blocks_stop_matching_only_for_that_worker() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, H)
    index.apply_stored("b", 1, H)
    index.apply_removed("a", 2, H[1:2])
    assert index.match_lengths(H, ["a", "b"]) == [1, 4]


def test_in_memory_locations_drop_empty_holder_sets() -> None:
    locations = InMemoryBlockLocations()
    locations.add("a", H[:2])
    locations.discard("a", H[:2])
    locations.discard("unknown", H)  # a worker never added is a no-op
    assert locations.match_lengths(H[:2], ["a", "unknown"]) == [0, 0]
    assert locations.num_blocks("a") == 0
    assert locations._holders_of == {}  # no empty entries left behind


def test_in_memory_locations_are_invisible_to_the_garbage_collector() -> None:
    # Why masks: a map of atoms is untracked, so full collections never walk the index.
    import gc

    locations = InMemoryBlockLocations()
    for worker in ("a", "b", "c"):
        locations.add(worker, H)
    gc.collect()
    assert not gc.is_tracked(locations._holders_of)
    assert not any(gc.is_tracked(blocks) for blocks in locations._blocks_of.values())


def test_a_freed_slot_is_reused_without_leaking_old_holdings() -> None:
    locations = InMemoryBlockLocations()
    locations.add("a", H[:3])
    locations.clear_worker("a")  # frees a's slot
    locations.add("b", H[:1])  # b takes the slot a had
    assert locations.match_lengths(H, ["a", "b"]) == [0, 1]


def test_index_runs_on_a_supplied_backend() -> None:
    locations = InMemoryBlockLocations()
    index = KvBlockIndex(locations)
    index.apply_stored("a", 1, H[:2])
    assert locations.match_lengths(H[:3], ["a", "b"]) == [2, 0]
