"""Expert layouts over EP ranks and the cost of an elastic EP step, worked by hand."""

from __future__ import annotations

import pytest

from triskel.common.moe import (
    MoeSpec,
    initial_layout,
    kv_tokens_per_rank,
    plan_step,
    quotas,
    relayout,
    valid_sizes,
)
from triskel.common.profiles import load_profile

SPEC = MoeSpec(
    num_experts=8,
    top_k=2,
    expert_bytes=1_000,
    dense_bytes=10_000,
    hbm_bytes_per_rank=20_000,
    kv_bytes_per_token=1,
    min_kv_tokens_per_rank=2_000,
    rank_start_s=20.0,
    reconfigure_s=5.0,
    interconnect_bytes_per_s=1_000.0,
    storage_bytes_per_s=100.0,
)


def test_quotas_spread_the_remainder_over_the_first_ranks() -> None:
    assert quotas(8, 3) == [3, 3, 2]
    assert initial_layout(8, 3) == ((0, 1, 2), (3, 4, 5), (6, 7))


def test_growing_moves_only_what_the_new_ranks_need() -> None:
    # 2 → 4 ranks: quotas 2 each; ranks 0 and 1 keep 2 of their 4, and the 4 others go to
    # the two new ranks: 4 moves (the least: 4 experts must land on empty ranks).
    layout, moved = relayout(initial_layout(8, 2), 8, 4)
    assert moved == 4
    assert layout[0] == (0, 1) and layout[1] == (4, 5)
    assert sorted(e for held in layout for e in held) == list(range(8))
    assert [len(held) for held in layout] == [2, 2, 2, 2]


def test_shrinking_moves_only_the_removed_ranks_experts() -> None:
    layout, moved = relayout(initial_layout(8, 4), 8, 2)
    assert moved == 4  # ranks 2 and 3 held 2 each; ranks 0 and 1 keep theirs
    assert set(layout[0]) >= {0, 1} and set(layout[1]) >= {2, 3}
    assert sorted(e for held in layout for e in held) == list(range(8))


def test_a_rank_must_hold_its_experts_and_a_useful_kv_cache() -> None:
    # One rank: 10,000 + 8 × 1,000 = 18,000 of 20,000 bytes, 2,000 left for KV: fits.
    # Two: 10,000 + 4,000 → 6,000 for KV. Nine ranks: more ranks than experts.
    assert valid_sizes(SPEC, 1, 9) == [1, 2, 3, 4, 5, 6, 7, 8]
    tight = SPEC.model_copy(update={"min_kv_tokens_per_rank": 2_001})
    assert valid_sizes(tight, 1, 3) == [2, 3]
    assert kv_tokens_per_rank(SPEC, 2) == 6_000
    with pytest.raises(ValueError, match="9 ranks"):
        relayout(initial_layout(8, 2), 8, 9)


def test_a_step_costs_reconfiguration_moves_and_new_ranks() -> None:
    up = plan_step(SPEC, initial_layout(8, 2), 4)
    # 4 experts × 1,000 B over 1,000 B/s = 4 s, + 5 s reconfigure + 20 s new ranks.
    assert (up.experts_moved, up.bytes_moved, up.seconds) == (4, 4_000, 29.0)
    down = plan_step(SPEC, up.layout, 2)
    assert down.seconds == 5.0 + 4.0  # no new ranks
    cold = plan_step(SPEC, initial_layout(8, 2), 4, cold=True)
    assert cold.seconds == 5.0 + 40.0 + 20.0  # the same bytes from storage at 100 B/s


def test_deepseek_v2_lite_reproduces_vllms_elastic_ep_figures() -> None:
    # vLLM reports ~31 s to scale up and ~7 s to scale down DeepSeek-V2-Lite.
    moe = load_profile("deepseek-v2-lite-ep-h100").moe
    assert moe is not None
    up = plan_step(moe, initial_layout(64, 4), 6)
    down = plan_step(moe, up.layout, 4)
    # 4 → 6: ranks 0-3 keep 11 of 16 experts each, 20 move (9 GB over NVLink, 0.05 s).
    assert up.experts_moved == 20 and up.bytes_moved == 9_000_000_000
    assert 28.0 <= up.seconds <= 34.0
    assert 6.0 <= down.seconds <= 8.0
