"""Block hashing: chaining, seeding by model and salt, full blocks only."""

from __future__ import annotations

import pytest

from triskel.common.hashing import hash_block, hash_blocks, root_hash

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def test_golden_values_are_pinned() -> None:
    # Router, workers and simulator must agree across versions: any change to the
    # hash function, seed format or token packing shows up here first.
    assert root_hash(MODEL) == 14805142853758280673
    assert hash_blocks(list(range(32)), 16, MODEL) == [
        477253504530046083,
        11013061145178034433,
    ]


def test_each_block_is_chained_to_its_parent() -> None:
    tokens = list(range(48))
    hashes = hash_blocks(tokens, 16, MODEL)
    # Block 0 hangs off the model's root hash, every later block off the one before.
    assert hashes[0] == hash_block(root_hash(MODEL), tokens[0:16])
    assert hashes[1] == hash_block(hashes[0], tokens[16:32])
    assert hashes[2] == hash_block(hashes[1], tokens[32:48])


def test_equal_hash_means_equal_prefix_not_just_equal_block() -> None:
    base = list(range(32))
    changed_first_block = [999, *base[1:]]
    # Block 1 holds the same tokens in both, but its parent differs, so its hash differs.
    assert hash_blocks(base, 16, MODEL)[1] != hash_blocks(changed_first_block, 16, MODEL)[1]
    changed_second_block = [*base[:31], 999]
    ours, theirs = hash_blocks(base, 16, MODEL), hash_blocks(changed_second_block, 16, MODEL)
    assert ours[0] == theirs[0]
    assert ours[1] != theirs[1]


@pytest.mark.parametrize(
    ("model_a", "salt_a", "model_b", "salt_b", "equal"),
    [
        (MODEL, "", MODEL, "", True),  # same seed: caches are shareable
        (MODEL, "", "Qwen/Qwen2.5-32B-Instruct", "", False),  # two models never share
        (MODEL, "tenant-a", MODEL, "tenant-b", False),  # salts isolate tenants
        (MODEL, "", MODEL, "tenant-a", False),  # a salt differs from no salt
    ],
)
def test_first_block_is_seeded_by_model_and_salt(
    model_a: str, salt_a: str, model_b: str, salt_b: str, equal: bool
) -> None:
    tokens = list(range(16))
    same = hash_blocks(tokens, 16, model_a, salt_a) == hash_blocks(tokens, 16, model_b, salt_b)
    assert same is equal


@pytest.mark.parametrize(
    ("num_tokens", "block_size", "num_hashes"),
    [
        (0, 16, 0),
        (15, 16, 0),  # one partial block: nothing to hash
        (16, 16, 1),
        (47, 16, 2),  # the trailing 15 tokens are a partial block
        (48, 16, 3),
        (10, 1, 10),  # block size 1: one hash per token
    ],
)
def test_only_full_blocks_are_hashed(num_tokens: int, block_size: int, num_hashes: int) -> None:
    assert len(hash_blocks(list(range(num_tokens)), block_size, MODEL)) == num_hashes


def test_partial_tail_does_not_change_full_block_hashes() -> None:
    tokens = list(range(40))
    assert hash_blocks(tokens, 16, MODEL) == hash_blocks(tokens[:32], 16, MODEL)


def test_max_blocks_stops_early() -> None:
    tokens = list(range(64))
    assert hash_blocks(tokens, 16, MODEL, max_blocks=2) == hash_blocks(tokens, 16, MODEL)[:2]


def test_block_size_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="block_size"):
        hash_blocks([1, 2, 3], 0, MODEL)
