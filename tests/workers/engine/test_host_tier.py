"""The host tier's own bookkeeping (LRU of hashes) and the chain helpers its events use."""

from __future__ import annotations

import pytest

from triskel.common.hashing import BlockHash
from triskel.workers.engine.chains import chain_runs, chains_of
from triskel.workers.engine.host_tier import HostTier


def h(value: int) -> BlockHash:
    return BlockHash(value)


def always(_tokens: int, _context: int) -> bool:
    return True


def test_offload_keeps_the_newest_and_reports_both_sides() -> None:
    tier = HostTier(3, always)
    stored, removed = tier.offload([h(3), h(2), h(1)], [h(2), h(1), None])
    assert stored == [(h(3), h(2)), (h(2), h(1)), (h(1), None)] and removed == []
    # Two more: the two least recently offloaded leave, and are reported.
    stored, removed = tier.offload([h(5), h(4)], [h(4), None])
    assert [block for block, _ in stored] == [h(5), h(4)]
    assert removed == [h(3), h(2)]
    assert len(tier) == 3


def test_a_block_offloaded_again_is_not_stored_twice_but_refreshed() -> None:
    tier = HostTier(2, always)
    tier.offload([h(1), h(2)], [None, None])
    stored, removed = tier.offload([h(1)], [None])
    assert stored == [] and removed == []
    _, removed = tier.offload([h(3)], [None])
    assert removed == [h(2)]  # 1 was refreshed, so 2 was the oldest


def test_prefix_and_touch() -> None:
    tier = HostTier(3, always)
    tier.offload([h(1), h(2), h(3)], [None, h(1), h(2)])
    assert tier.num_prefix([h(1), h(2), h(9), h(3)]) == 2
    tier.touch([h(1)])
    _, removed = tier.offload([h(4)], [None])
    assert removed == [h(2)]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="num_host_kv_blocks: must be >= 1"):
        HostTier(0, always)


def test_chains_of_and_runs() -> None:
    parents = {h(1): None, h(2): h(1), h(3): h(2), h(4): h(1), h(7): h(6)}
    assert sorted(chains_of(parents)) == [[h(1), h(2), h(3)], [h(1), h(4)], [h(7)]]
    blocks = [(h(1), None), (h(2), h(1)), (h(5), h(4)), (h(6), h(5)), (h(9), None)]
    assert chain_runs(blocks) == [([h(1), h(2)], None), ([h(5), h(6)], h(4)), ([h(9)], None)]
