"""An EP group's engine capacity from a per-rank MoE profile, and the sizes it may take."""

from __future__ import annotations

import pytest

from triskel.common.profiles import load_profile
from triskel.workers.ep_group import EpGroupSpec, ep_group_spec

DEEPSEEK = load_profile("deepseek-v2-lite-ep-h100")
DENSE = load_profile("llama-3.1-8b-h100")


def deepseek_group(
    ep: int = 4, kv_capacity_tokens_per_rank: int | None = None, max_ep_size: int | None = None
) -> EpGroupSpec:
    group = ep_group_spec(
        DEEPSEEK,
        ep,
        model="m",
        kv_capacity_tokens_per_rank=kv_capacity_tokens_per_rank,
        max_ep_size=max_ep_size,
    )
    assert group is not None
    return group


@pytest.mark.parametrize(
    ("ranks", "num_blocks_per_rank"),
    [
        # (74e9 - 2.6e9 dense - 16 experts x 450e6) / 31,104 B = 2,064,043 tokens per rank,
        # 129,002 blocks of 16.
        (4, 129_002),
        # 64 = 4 x 11 + 2 x 10: the largest share is 11 experts, 2,136,381 tokens.
        (6, 133_523),
    ],
)
def test_a_group_is_n_ranks_side_by_side(ranks: int, num_blocks_per_rank: int) -> None:
    config = deepseek_group().engine_config(ranks)
    assert config.num_kv_blocks == ranks * num_blocks_per_rank
    assert config.max_num_seqs == ranks * 256
    assert config.max_num_batched_tokens == ranks * 8192
    assert (config.num_ep_ranks, config.model, config.block_size_tokens) == (ranks, "m", 16)


def test_the_pools_kv_capacity_overrides_each_ranks() -> None:
    group = deepseek_group(kv_capacity_tokens_per_rank=4096)
    assert group.engine_config(4).num_kv_blocks == 4 * 256
    assert group.engine_config(6).num_kv_blocks == 6 * 256


def test_the_largest_size_defaults_to_twice_the_start_and_sizes_the_arena() -> None:
    group = deepseek_group()
    assert (group.max_ranks, group.sizes) == (8, list(range(1, 9)))
    assert group.max_num_kv_blocks == group.engine_config(8).num_kv_blocks
    assert deepseek_group(max_ep_size=6).sizes == list(range(1, 7))


@pytest.mark.parametrize(
    ("ranks", "problem"),
    [
        (4, None),
        (0, "0 is not a number of ranks"),
        (9, "9 is above 8, the largest EP size this worker may reach (maxEpSize"),
        (65, "65 ranks exceed the model's 64 experts"),
    ],
)
def test_size_problems_name_the_limit(ranks: int, problem: str | None) -> None:
    found = deepseek_group().size_problem(ranks)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)
        assert "valid EP sizes for deepseek-v2-lite-ep-h100: 1 to 8" in found


def test_a_size_whose_experts_do_not_fit_a_rank_is_refused() -> None:
    # 40e9 B per rank; a useful KV cache is 300,000 x 31,104 B = 9.3e9. One rank holds
    # 2.6e9 dense + 64 x 450e6 = 31.4e9 of weights, 8.6e9 left: too little. Two hold
    # 2.6e9 + 32 x 450e6 = 17e9, 23e9 left: enough.
    assert DEEPSEEK.moe is not None
    moe = DEEPSEEK.moe.model_copy(
        update={"hbm_bytes_per_rank": 40_000_000_000, "min_kv_tokens_per_rank": 300_000}
    )
    group = EpGroupSpec(DEEPSEEK, moe, "m", max_ranks=8)
    assert group.sizes[0] == 2
    problem = group.size_problem(1)
    assert problem is not None
    assert problem.startswith("1 ranks cannot each hold the dense weights, 64 experts and a ")
    with pytest.raises(ValueError, match="ranks: 1 ranks cannot each hold"):
        group.engine_config(1)


def test_a_dense_profile_is_one_engine_and_refuses_ep() -> None:
    assert ep_group_spec(DENSE, 1) is None
    with pytest.raises(
        ValueError,
        match=r"parallelism.ep: 4 needs a profile with a `moe:` section; "
        r"llama-3.1-8b-h100 has none",
    ):
        ep_group_spec(DENSE, 4)
    with pytest.raises(ValueError, match=r"maxEpSize: llama-3\.1-8b-h100 is a dense model's"):
        ep_group_spec(DENSE, 1, max_ep_size=2)


def test_a_start_size_the_group_cannot_take_is_refused() -> None:
    with pytest.raises(ValueError, match=r"parallelism\.ep: 65 ranks exceed the model's 64"):
        ep_group_spec(DEEPSEEK, 65)
    with pytest.raises(ValueError, match=r"maxEpSize: 3 is below parallelism.ep \(4\)"):
        ep_group_spec(DEEPSEEK, 4, max_ep_size=3)
