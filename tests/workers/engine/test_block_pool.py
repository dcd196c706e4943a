"""The block pool: allocation, reference counts, prefix cache, LRU eviction, events."""

from __future__ import annotations

import pytest

from triskel.common.hashing import BlockHash
from triskel.workers.engine.block_pool import BlockPool
from triskel.workers.engine.events import BlocksRemoved, BlocksStored

H1, H2, H3, H4 = (BlockHash(value) for value in (101, 102, 103, 104))


def test_allocate_and_free() -> None:
    pool = BlockPool(4)
    assert pool.allocate(3) == [0, 1, 2]
    assert pool.num_free_blocks == 1
    assert pool.usage == 0.75
    assert not pool.can_allocate(2)
    pool.free([2, 1, 0])
    assert pool.num_free_blocks == 4
    assert pool.usage == 0.0


def test_over_allocation_names_the_counts() -> None:
    pool = BlockPool(2)
    with pytest.raises(ValueError, match="3 requested but only 2 free"):
        pool.allocate(3)


def test_a_pool_needs_a_block() -> None:
    with pytest.raises(ValueError, match="num_blocks"):
        BlockPool(0)


def test_ref_counts_keep_shared_blocks_in_use() -> None:
    pool = BlockPool(2)
    [block] = pool.allocate(1)
    pool.cache_blocks([block], [H1], None)
    pool.touch([block])  # a second request hits the cached block
    assert pool.ref_count(block) == 2
    pool.free([block])
    assert pool.ref_count(block) == 1
    assert pool.num_free_blocks == 1  # still held by the other request
    pool.free([block])
    assert pool.num_free_blocks == 2
    with pytest.raises(ValueError, match="already free"):
        pool.free([block])


def test_cached_prefix_is_the_longest_run_from_block_zero() -> None:
    pool = BlockPool(4)
    blocks = pool.allocate(3)
    pool.cache_blocks(blocks, [H1, H2, H3], None)
    assert pool.find_cached_prefix([H1, H2, H4, H3]) == [0, 1]
    assert pool.find_cached_prefix([H4, H1]) == []  # a match must start at block 0
    assert pool.find_cached_prefix([H1, H2, H3]) == [0, 1, 2]


def test_freed_cached_blocks_stay_findable_and_count_as_free() -> None:
    pool = BlockPool(2)
    blocks = pool.allocate(2)
    pool.cache_blocks(blocks, [H1, H2], None)
    pool.free(reversed(blocks))
    assert pool.num_free_blocks == 2
    assert pool.usage == 0.0
    assert pool.find_cached_prefix([H1, H2]) == [0, 1]


def test_touching_an_evictable_block_takes_it_out_of_the_free_pool() -> None:
    pool = BlockPool(2)
    blocks = pool.allocate(2)
    pool.cache_blocks(blocks, [H1, H2], None)
    pool.free(reversed(blocks))
    assert pool.num_evictable([0, 1]) == 2
    pool.touch([0])
    assert pool.num_free_blocks == 1
    assert pool.num_evictable([0, 1]) == 1
    # The only free block is 1; block 0 is safe from eviction while referenced.
    assert pool.allocate(1) == [1]
    assert pool.find_cached_prefix([H1]) == [0]


def test_empty_blocks_are_used_before_any_cached_block_is_evicted() -> None:
    pool = BlockPool(4)
    blocks = pool.allocate(2)
    pool.cache_blocks(blocks, [H1, H2], None)
    pool.free(reversed(blocks))
    pool.drain_events()
    assert pool.allocate(2) == [2, 3]  # never used: no eviction needed
    assert pool.drain_events() == []
    assert pool.find_cached_prefix([H1, H2]) == [0, 1]


def test_eviction_takes_the_least_recently_freed_first() -> None:
    pool = BlockPool(3)
    blocks = pool.allocate(3)
    pool.cache_blocks(blocks, [H1, H2, H3], None)
    pool.free([1])
    pool.free([2, 0])  # freed after block 1, in this order
    pool.drain_events()
    assert pool.allocate(1) == [1]
    assert pool.allocate(2) == [2, 0]
    assert pool.drain_events() == [
        BlocksRemoved(event_id=2, block_hashes=(H2,)),
        BlocksRemoved(event_id=3, block_hashes=(H3, H1)),
    ]
    assert pool.num_cached_blocks == 0


def test_storing_emits_a_chain_with_its_parent() -> None:
    pool = BlockPool(4)
    blocks = pool.allocate(3)
    pool.cache_blocks(blocks[:1], [H1], None)
    pool.cache_blocks(blocks[1:], [H2, H3], H1)
    assert pool.drain_events() == [
        BlocksStored(event_id=1, block_hashes=(H1,), parent_hash=None),
        BlocksStored(event_id=2, block_hashes=(H2, H3), parent_hash=H1),
    ]
    assert pool.drain_events() == []  # drained


def test_a_hash_cached_elsewhere_is_skipped_and_splits_the_event() -> None:
    pool = BlockPool(4)
    [first] = pool.allocate(1)
    pool.cache_blocks([first], [H2], H1)
    pool.drain_events()
    blocks = pool.allocate(3)
    # Block 0 of this sequence is new, block 1 duplicates `first`, block 2 is new.
    pool.cache_blocks(blocks, [H1, H2, H3], None)
    assert pool.drain_events() == [
        BlocksStored(event_id=2, block_hashes=(H1,), parent_hash=None),
        BlocksStored(event_id=3, block_hashes=(H3,), parent_hash=H2),
    ]
    assert not pool.is_cached(blocks[1])
    pool.free([blocks[1]])
    assert pool.allocate(1) == [blocks[1]]  # the uncached duplicate went back as empty


def test_event_ids_increase_by_one_across_kinds() -> None:
    pool = BlockPool(1)
    for block_hash in (H1, H2, H3):
        [block] = pool.allocate(1)  # evicts the previous hash after the first round
        pool.cache_blocks([block], [block_hash], None)
        pool.free([block])
    ids = [event.event_id for event in pool.drain_events()]
    assert ids == [1, 2, 3, 4, 5]  # stored, removed, stored, removed, stored
    assert pool.last_event_id == 5


def test_cache_blocks_needs_one_hash_per_block() -> None:
    pool = BlockPool(2)
    with pytest.raises(ValueError, match="2 hashes for 1 blocks"):
        pool.cache_blocks(pool.allocate(1), [H1, H2], None)


def test_cached_block_chains_are_root_to_leaf_paths() -> None:
    pool = BlockPool(4)
    blocks = pool.allocate(4)
    pool.cache_blocks(blocks[:2], [H1, H2], None)  # sequence A: H1 -> H2
    pool.cache_blocks(blocks[2:3], [H3], H1)  # sequence B shares H1: H1 -> H3
    assert sorted(pool.cached_block_chains()) == [[H1, H2], [H1, H3]]
    pool.free(blocks)
    # Block 3 was never cached, so it goes first; then the least recently freed: 0 (H1).
    assert pool.allocate(2) == [3, 0]
    # H2 and H3 lose their cached parent: each now starts its own chain.
    assert sorted(pool.cached_block_chains()) == [[H2], [H3]]


# -- capacity changes (an elastic EP group) ------------------------------------------


def test_growing_adds_blocks_after_the_highest_id() -> None:
    pool = BlockPool(2)
    assert pool.allocate(2) == [0, 1]
    pool.resize(4)
    assert (pool.num_blocks, pool.num_free_blocks, pool.num_physical_blocks) == (4, 2, 4)
    assert pool.allocate(2) == [2, 3]
    pool.free([3, 2, 1, 0])
    assert pool.usage == 0.0


def test_shrinking_below_what_runs_stops_admission_not_the_running() -> None:
    pool = BlockPool(4)
    held = pool.allocate(3)
    pool.resize(2)
    # 3 blocks in use > capacity 2: nothing can be admitted, usage reads full.
    assert (pool.num_free_blocks, pool.usage) == (0, 1.0)
    assert not pool.can_allocate(1)
    # A running request may still take the last block it had before the shrink.
    assert pool.can_extend(1) and not pool.can_extend(2)
    assert pool.is_draining
    held += pool.allocate(1)
    pool.free(reversed(held[2:]))
    # 2 in use fit the capacity: draining is over, and growth is held to it too.
    assert not pool.is_draining and not pool.can_extend(1)
    pool.free(reversed(held[:2]))
    # All back: the capacity is 2, and no block past id 3 was ever made.
    assert (pool.num_free_blocks, pool.num_physical_blocks) == (2, 4)
    assert len(pool.allocate(2)) == 2 and not pool.can_allocate(1)


def test_shrinking_evicts_cached_blocks_the_new_capacity_cannot_keep() -> None:
    pool = BlockPool(4)
    blocks = pool.allocate(3)
    pool.cache_blocks(blocks, [H1, H2, H3], None)
    pool.free(reversed(blocks))  # cached, evictable: H3 first, then H2, H1
    pool.drain_events()
    pool.resize(2)
    # Cached plus in-use blocks must fit 2: the least recently freed (H3) goes.
    assert pool.drain_events() == [BlocksRemoved(2, (H3,))]  # event 1 stored the run
    assert pool.find_cached_prefix([H1, H2, H3]) == [blocks[0], blocks[1]]
    assert pool.num_free_blocks == 2
    # Allocating takes the cached ones, never a held-back empty block.
    assert sorted(pool.allocate(2)) == sorted(blocks[:2])


def test_blocks_freed_past_the_capacity_do_not_stay_cached() -> None:
    pool = BlockPool(3)
    blocks = pool.allocate(3)
    pool.cache_blocks(blocks, [H1, H2, H3], None)
    pool.drain_events()
    pool.resize(1)
    pool.free([blocks[2]])
    # 2 in use + 1 cached > 1: the freed block is evicted at once.
    assert pool.drain_events() == [BlocksRemoved(2, (H3,))]  # event 1 stored the run
    pool.free([blocks[1], blocks[0]])
    assert pool.num_cached_blocks == 1 and pool.num_free_blocks == 1


def test_a_capacity_needs_a_block() -> None:
    with pytest.raises(ValueError, match="num_blocks: must be >= 1, got 0"):
        BlockPool(2).resize(0)
