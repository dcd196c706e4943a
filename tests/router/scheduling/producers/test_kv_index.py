"""KvBlockIndex: in-order events, gaps and replays, snapshots, prefix match walking, and
the host tier (match_tiers)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from triskel.common.hashing import BlockHash
from triskel.common.kv_tiers import KvMedium
from triskel.router.scheduling.producers.holders import PyHolderMap
from triskel.router.scheduling.producers.kv_index import InMemoryBlockLocations, KvBlockIndex
from triskel.router.scheduling.producers.worker_blocks import PyBlockSet

from support.holder_maps import HOLDER_MAPS, HolderMapFactory


def hashes(*values: int) -> list[BlockHash]:
    return [BlockHash(v) for v in values]


H = hashes(10, 11, 12, 13)
GPU, HOST = KvMedium.GPU, KvMedium.HOST


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


@pytest.mark.parametrize("make", HOLDER_MAPS)
def test_in_memory_locations_drop_empty_holder_sets(make: HolderMapFactory) -> None:
    holders = make()
    locations = InMemoryBlockLocations(holders)
    locations.add("a", H[:2])
    locations.discard("a", H[:2])
    locations.discard("unknown", H)  # a worker never added is a no-op
    assert locations.match_lengths(H[:2], ["a", "unknown"]) == [0, 0]
    assert locations.num_blocks("a") == 0
    assert len(holders) == 0  # no empty entries left behind


@pytest.mark.parametrize("make", HOLDER_MAPS)
def test_in_memory_locations_are_invisible_to_the_garbage_collector(
    make: HolderMapFactory,
) -> None:
    # Why masks: a map of atoms is untracked, so full collections never walk the index.
    import gc

    holders = make()
    locations = InMemoryBlockLocations(holders)
    for worker in ("a", "b", "c"):
        locations.add(worker, H)
    gc.collect()
    if isinstance(holders, PyHolderMap):  # a dict of ints: untracked
        assert not gc.is_tracked(holders._holders)
    else:  # the compiled map holds no Python objects: the collector sees only its type
        assert gc.get_referents(holders) in ([], [type(holders)])
    for blocks in locations._blocks_of.values():  # each worker's: a dict of atoms, or C
        assert not gc.is_tracked(blocks.blocks if isinstance(blocks, PyBlockSet) else blocks)


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


# -- the host tier --------------------------------------------------------------


def test_host_blocks_count_only_after_the_gpu_prefix() -> None:
    index = KvBlockIndex()
    # a: GPU 10, 11, then 12, 13 in the host tier (an offloaded tail).
    assert index.apply_stored("a", 1, H[:2])
    assert index.apply_stored("a", 2, H, HOST)  # inclusive: the host may hold 10, 11 too
    # b: nothing in GPU memory, all four in the host tier.
    assert index.apply_stored("b", 1, H, HOST)
    # c: the whole prompt in GPU memory: no host walk needed, h = 0.
    assert index.apply_stored("c", 1, H)
    assert index.apply_stored("c", 2, H, HOST)
    assert index.match_tiers(H, ["a", "b", "c", "x"]) == [(2, 2), (0, 4), (4, 0), (0, 0)]
    # The GPU view is unchanged by host blocks.
    assert index.match_lengths(H, ["a", "b", "c"]) == [2, 0, 4]
    assert (index.num_blocks("b"), index.num_blocks("b", HOST)) == (0, 4)


@pytest.mark.parametrize(
    ("gpu", "host", "expected"),
    [
        pytest.param(H[:1], H[1:3], (1, 2), id="host-continues-then-stops"),
        # The host run must start right after the GPU prefix: block 11 is missing.
        pytest.param(H[:1], H[2:], (1, 0), id="host-hole-at-the-join"),
        # A GPU hole ends the GPU prefix; the host tier picks up from there.
        pytest.param([H[0], H[2]], H[1:], (1, 3), id="gpu-hole-host-fills"),
        pytest.param([], [H[0], H[1], H[3]], (0, 2), id="host-hole-ends-the-walk"),
    ],
)
def test_host_continuation_is_a_prefix_walk_from_the_gpu_stop(
    gpu: list[BlockHash], host: list[BlockHash], expected: tuple[int, int]
) -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, gpu)
    index.apply_stored("a", 2, host, HOST)
    assert index.match_tiers(H, ["a"]) == [expected]


def test_the_host_tier_is_walked_once_for_every_worker() -> None:
    class CountingLocations(InMemoryBlockLocations):
        __slots__ = ("walks",)

        def __init__(self) -> None:
            super().__init__()
            self.walks: list[list[int]] = []

        def match_from(
            self,
            block_hashes: Sequence[BlockHash],
            starts: Sequence[int],
            worker_ids: Sequence[str],
        ) -> list[int]:
            self.walks.append(list(starts))
            return super().match_from(block_hashes, starts, worker_ids)

    host = CountingLocations()
    index = KvBlockIndex(host_locations=host)
    for worker_id, num_gpu in (("a", 1), ("b", 1), ("c", 4), ("d", 0)):
        index.apply_stored(worker_id, 1, H[:num_gpu])
        index.apply_stored(worker_id, 2, H, HOST)
    assert index.match_tiers(H, ["a", "b", "c", "d"]) == [(1, 3), (1, 3), (4, 0), (0, 4)]
    # One host call, each worker starting from its GPU depth.
    assert host.walks == [[1, 1, 4, 0]]


@pytest.mark.parametrize(
    ("starts", "expected"),
    [
        pytest.param([0, 0, 0], [4, 1, 0], id="all-from-block-0"),
        # a joins at 1 and runs to the end; b at 1 misses block 11 at once.
        pytest.param([1, 1, 0], [3, 0, 0], id="from-block-1"),
        # c holds 12, 13 only: from block 2 it matches both.
        pytest.param([3, 0, 2], [1, 1, 2], id="mixed-starts"),
        # Starts at or past the end match nothing.
        pytest.param([4, 9, 4], [0, 0, 0], id="past-the-end"),
        # Nobody active between b's stop (block 1) and a's join (block 3): the walk jumps.
        pytest.param([3, 0, 0], [1, 1, 0], id="gap-between-joins"),
    ],
)
def test_in_memory_match_from_walks_from_each_start(starts: list[int], expected: list[int]) -> None:
    locations = InMemoryBlockLocations()
    locations.add("a", H)
    locations.add("b", H[:1])
    locations.add("c", H[2:])
    assert locations.match_from(H, starts, ["a", "b", "c"]) == expected
    assert locations.match_from(H, [0, 0], ["x", "a"]) == [0, 4]  # unknown: nothing


def test_gpu_removal_keeps_the_host_copy_and_host_removal_drops_it() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, H)
    # An offloading eviction: GPU removed, then host stored, in one sequence.
    assert index.apply_removed("a", 2, H[2:])
    assert index.apply_stored("a", 3, H[2:], HOST)
    assert index.match_tiers(H, ["a"]) == [(2, 2)]
    # The host tier evicts block 13; block 12 still continues the prefix there.
    assert index.apply_removed("a", 4, H[3:], HOST)
    assert index.match_tiers(H, ["a"]) == [(2, 1)]
    # A load back into GPU memory: GPU stored, the host keeps its copy (inclusive).
    assert index.apply_stored("a", 5, H[2:3])
    assert index.match_tiers(H, ["a"]) == [(3, 0)]
    assert index.num_blocks("a", HOST) == 1


def test_one_event_sequence_spans_both_media() -> None:
    index = KvBlockIndex()
    assert index.apply_stored("a", 1, H[:2])
    assert index.apply_stored("a", 2, H[2:], HOST)
    # Event 3 (whatever its medium) was lost: the HOST event 4 is a gap.
    assert not index.apply_removed("a", 4, H[2:], HOST)
    assert index.needs_snapshot("a")
    assert not index.apply_stored("a", 3, H[2:])  # untrusted until the snapshot
    index.apply_snapshot("a", [H[:1]], last_event_id=9, host_chains=[H[1:]])
    assert index.match_tiers(H, ["a"]) == [(1, 3)]
    assert index.apply_stored("a", 10, H[3:], HOST)  # 10 follows 9 across media


def test_snapshot_replaces_both_tiers() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, H)
    index.apply_stored("a", 2, H, HOST)
    index.apply_snapshot("a", [H[:1]], last_event_id=5)  # no host chains: host emptied
    assert index.match_tiers(H, ["a"]) == [(1, 0)]
    assert index.num_blocks("a", HOST) == 0


def test_cleared_and_remove_worker_drop_both_tiers() -> None:
    index = KvBlockIndex()
    for worker_id in ("a", "b"):
        index.apply_stored(worker_id, 1, H[:1])
        index.apply_stored(worker_id, 2, H, HOST)
    assert index.apply_cleared("a", 3)
    index.remove_worker("b")
    assert index.match_tiers(H, ["a", "b"]) == [(0, 0), (0, 0)]
    assert (index.num_blocks("a", HOST), index.num_blocks("b", HOST)) == (0, 0)
    assert index.apply_stored("b", 1, H, HOST)  # b starts over from event 0


def test_match_tiers_of_nothing() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, H, HOST)
    assert index.match_tiers([], ["a"]) == [(0, 0)]
    assert index.match_tiers(H, []) == []


@pytest.mark.parametrize("make", HOLDER_MAPS)
def test_locations_agree_with_sets_through_adds_and_discards(make: HolderMapFactory) -> None:
    # Random churn over few blocks and many workers: every stored value follows the rule
    # (a lone holder as ~slot, a mask for several) and every walk agrees with plain sets.
    rng = random.Random(4)
    holders = make()
    locations = InMemoryBlockLocations(holders)
    blocks = [BlockHash(700 + i) for i in range(8)]
    workers = [f"w{i}" for i in range(150)]
    held: dict[str, set[BlockHash]] = {w: set() for w in workers}
    for _ in range(3_000):
        worker = rng.choice(workers)
        chosen = rng.sample(blocks, rng.randrange(1, 4))
        if rng.random() < 0.55:
            locations.add(worker, chosen)
            held[worker].update(chosen)
        else:
            locations.discard(worker, chosen)
            held[worker].difference_update(chosen)
    for block_hash in blocks:  # a block nobody holds has no entry
        assert (block_hash in holders) == any(block_hash in h for h in held.values())
    if isinstance(holders, PyHolderMap):  # its encoding: ~slot alone, a mask for several
        for value in holders.stored_values():
            assert value < 0 or value.bit_count() >= 2
    expected = []
    for worker in workers:
        depth = 0
        while depth < len(blocks) and blocks[depth] in held[worker]:
            depth += 1
        expected.append(depth)
    assert locations.match_lengths(blocks, workers) == expected
    for worker in workers:
        locations.clear_worker(worker)
    assert len(holders) == 0
