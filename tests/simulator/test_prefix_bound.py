"""prefix_hit_bound: longest earlier prefix per request, full blocks only, in given order."""

from __future__ import annotations

import time

import pytest

from triskel.simulator.prefix_bound import PrefixBound, pooled_lru_hit_ratio, prefix_hit_bound
from triskel.traces import TraceRequest

BLOCK = 4


def request(ids: tuple[int, ...], num_input_tokens: int, block_tokens: int = BLOCK) -> TraceRequest:
    return TraceRequest(
        arrival_s=0.0,
        num_input_tokens=num_input_tokens,
        num_output_tokens=1,
        prefix_block_ids=ids,
        prefix_block_tokens=block_tokens,
        session_id=None,
        index=0,
    )


@pytest.mark.parametrize(
    ("requests", "expected_hit_tokens"),
    [
        # The first request of a trace always misses.
        ([request((1, 2), 8)], 0),
        # Same two full blocks again: 8 tokens hit.
        ([request((1, 2), 8), request((1, 2), 8)], 8),
        # Shares only the first id: one block.
        ([request((1, 2), 8), request((1, 3), 8)], 4),
        # A conversation's next turn extends the previous ids: its 2 old blocks hit.
        ([request((1, 2), 8), request((1, 2, 3, 4), 16)], 8),
        # A shorter request inside an earlier longer one: all its blocks hit.
        ([request((1, 2, 3), 12), request((1, 2), 8)], 8),
        # Differs at the first id: nothing, though later ids are equal (ids are positional).
        ([request((1, 2), 8), request((9, 2), 8)], 0),
        # Partial last block (7 tokens = 1 full + 3): only block 1 is cached and reused.
        ([request((1, 2), 7), request((1, 2), 7)], 4),
        # The partial block 2 of the first request is not cached even for a later
        # request where it is full.
        ([request((1, 2), 7), request((1, 2), 8)], 4),
        # Both the union and the order matter: (1,) then (1, 2) then (1, 2) -> 4 + 8.
        ([request((1,), 4), request((1, 2), 8), request((1, 2), 8)], 12),
        # No prefix information (block size 0): never a hit.
        ([request((), 8, block_tokens=0), request((), 8, block_tokens=0)], 0),
    ],
)
def test_hit_tokens(requests: list[TraceRequest], expected_hit_tokens: int) -> None:
    bound = prefix_hit_bound(requests)
    assert bound.num_hit_tokens == expected_hit_tokens
    assert bound.num_prompt_tokens == sum(r.num_input_tokens for r in requests)


def test_hit_ratio_is_hits_over_prompt_tokens() -> None:
    # 8 of 16 tokens hit.
    assert prefix_hit_bound([request((1, 2), 8), request((1, 2), 8)]).hit_ratio == 0.5
    # An empty trace has no prompt tokens and hits nothing.
    assert prefix_hit_bound([]) == PrefixBound(0, 0)
    assert PrefixBound(0, 0).hit_ratio == 0.0


def test_fast_on_a_mooncake_sized_trace() -> None:
    # 12,000 conversations of 24 blocks sharing a 4-block system prompt: the size of
    # Mooncake's conversation trace. Each request after the first hits its 4 shared blocks.
    requests = [
        request((1, 2, 3, 4, *range(100 + 20 * i, 120 + 20 * i)), 24 * BLOCK) for i in range(12_000)
    ]
    start_s = time.perf_counter()
    bound = prefix_hit_bound(requests)
    elapsed_s = time.perf_counter() - start_s
    assert bound.num_hit_tokens == 11_999 * 4 * BLOCK
    # Measured about 0.1 s; the margin absorbs slow CI machines.
    assert elapsed_s < 2.0


def test_a_pooled_lru_as_large_as_the_trace_matches_the_infinite_bound() -> None:
    requests = [request((1, 2), 8), request((1, 2, 3, 4), 16), request((1, 5), 8)]
    assert pooled_lru_hit_ratio(requests, 1_000) == prefix_hit_bound(requests)


def test_a_small_pooled_lru_forgets_what_it_evicted_tail_first() -> None:
    # Capacity 3 blocks: after (1, 2) and (7, 8, 9), block 1 is gone (least recent).
    requests = [request((1, 2), 8), request((7, 8, 9), 12), request((1, 2), 8)]
    assert pooled_lru_hit_ratio(requests, 3 * BLOCK).num_hit_tokens == 0
    # Capacity 4: only block 2, the tail of the first request, was evicted, so its head hits.
    assert pooled_lru_hit_ratio(requests, 4 * BLOCK).num_hit_tokens == BLOCK
    assert pooled_lru_hit_ratio(requests, 5 * BLOCK).num_hit_tokens == 2 * BLOCK


def test_a_pooled_lru_needs_a_capacity() -> None:
    with pytest.raises(ValueError, match="capacity_tokens"):
        pooled_lru_hit_ratio([], 0)
