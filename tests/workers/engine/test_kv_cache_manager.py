"""Request-level KV bookkeeping: prefix hits, slot allocation, block caching, freeing."""

from __future__ import annotations

from array import array

import pytest

from triskel.common.hashing import hash_blocks
from triskel.workers.engine.block_pool import BlockPool
from triskel.workers.engine.events import BlocksStored
from triskel.workers.engine.kv_cache_manager import KvCacheManager
from triskel.workers.engine.request import EngineRequest, RequestState

MODEL = "test-model"
BLOCK = 4


def make_state(token_ids: list[int], request_id: str = "r") -> RequestState:
    return RequestState(
        request=EngineRequest(request_id, list(token_ids), max_tokens=100),
        token_ids=array("I", token_ids),
        num_prompt_tokens=len(token_ids),
        sample_seed=0,
        natural_length_tokens=10**6,
    )


def make_manager(num_blocks: int = 16, salt: str = "") -> KvCacheManager:
    return KvCacheManager(BlockPool(num_blocks), BLOCK, MODEL, salt)


def compute_all(kv: KvCacheManager, state: RequestState) -> None:
    """Allocates and 'computes' every known token of `state` in one go."""
    kv.allocate(state, state.num_uncomputed_tokens)
    state.num_computed_tokens = state.num_tokens
    kv.cache_computed_blocks(state)


def test_block_hashes_match_the_shared_hashing_module() -> None:
    kv = make_manager()
    state = make_state(list(range(10)))
    compute_all(kv, state)
    state.token_ids.extend([50, 51])  # two output tokens complete block 2
    state.num_computed_tokens = 12
    kv.cache_computed_blocks(state)
    # Output tokens are hashed exactly as if they had been part of the prompt.
    assert state.block_hashes == hash_blocks(state.token_ids, BLOCK, MODEL)


def test_only_full_computed_blocks_are_cached() -> None:
    kv = make_manager()
    state = make_state(list(range(10)))
    kv.allocate(state, 10)
    state.num_computed_tokens = 7  # block 0 full and computed, block 1 not yet
    kv.cache_computed_blocks(state)
    hashes = hash_blocks(state.token_ids, BLOCK, MODEL)
    assert kv.pool.drain_events() == [BlocksStored(1, (hashes[0],), None)]
    state.num_computed_tokens = 10
    kv.cache_computed_blocks(state)
    # Block 1 chains to block 0; block 2 (tokens 8-9) is partial and stays uncached.
    assert kv.pool.drain_events() == [BlocksStored(2, (hashes[1],), hashes[0])]


def test_prefix_hit_is_capped_by_max_blocks() -> None:
    kv = make_manager()
    first = make_state(list(range(12)), "first")
    compute_all(kv, first)
    second = make_state(list(range(12)), "second")
    assert kv.find_prefix_hit(second, max_blocks=3) == first.block_ids[:3]
    assert kv.find_prefix_hit(second, max_blocks=2) == first.block_ids[:2]
    assert kv.find_prefix_hit(second, max_blocks=0) == []


def test_a_different_salt_never_hits() -> None:
    pool = BlockPool(16)
    plain = KvCacheManager(pool, BLOCK, MODEL)
    salted = KvCacheManager(pool, BLOCK, MODEL, salt="tenant")
    compute_all(plain, make_state(list(range(8))))
    assert salted.find_prefix_hit(make_state(list(range(8))), max_blocks=2) == []


def test_allocating_with_hits_counts_them_as_computed() -> None:
    kv = make_manager()
    first = make_state(list(range(12)), "first")
    compute_all(kv, first)
    kv.free(first)
    second = make_state([*range(12), 99, 98], "second")
    hits = kv.find_prefix_hit(second, max_blocks=3)
    assert kv.can_allocate(second, 2, hits)
    kv.allocate(second, 2, hits)
    assert second.num_computed_tokens == 12
    assert second.block_ids[:3] == hits
    assert len(second.block_ids) == 4  # 14 tokens need 4 blocks of 4
    assert kv.pool.usage == 4 / 16


def test_can_allocate_counts_evictable_hits_as_used() -> None:
    kv = make_manager(num_blocks=3)
    first = make_state(list(range(8)), "first")
    compute_all(kv, first)
    kv.free(first)  # 2 cached blocks now evictable, 3 free in total
    second = make_state([*range(8), 7, 7, 7, 7, 7], "second")
    hits = kv.find_prefix_hit(second, max_blocks=2)
    # 13 tokens need 4 blocks: the 2 hits (taken out of the free pool) + 2 new = 4 > 3.
    assert not kv.can_allocate(second, 5, hits)
    assert kv.can_allocate(second, 4, hits)  # 12 tokens: 2 hits + 1 new block


def test_hits_only_for_a_request_without_blocks() -> None:
    kv = make_manager()
    first = make_state(list(range(8)), "first")
    compute_all(kv, first)
    with pytest.raises(ValueError, match="already holds 2 blocks"):
        kv.allocate(first, 1, kv.find_prefix_hit(first, max_blocks=1))


def test_free_releases_the_tail_first() -> None:
    kv = make_manager(num_blocks=3)
    state = make_state(list(range(12)))
    compute_all(kv, state)
    blocks = list(state.block_ids)
    kv.free(state)
    assert state.block_ids == []
    assert state.num_registered_blocks == 0
    # The last block of the sequence is evicted first, the head of the prefix last.
    assert kv.pool.allocate(3) == list(reversed(blocks))


def test_block_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="block_size_tokens"):
        KvCacheManager(BlockPool(1), 0, MODEL)
