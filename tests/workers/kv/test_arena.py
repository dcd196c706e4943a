from __future__ import annotations

import ctypes

import pytest

from triskel.workers.kv.arena import KvArena, contiguous_runs, kv_block_bytes, paired_runs


@pytest.mark.parametrize(
    ("kv_bytes_per_token", "block_size_tokens", "scale", "expected"),
    [
        # Llama-3.1-8B: 32 layers x 8 KV heads x 128 dims x 2 (K, V) x 2 bytes = 128 KiB
        # per token; 16 tokens at 1/256 scale = 8 KiB, already a multiple of 64.
        (131072, 16, 1 / 256, 8192),
        # Unscaled: 16 x 128 KiB = 2 MiB exactly.
        (131072, 16, 1.0, 2 << 20),
        # 100 bytes x 16 tokens x 0.5 = 800 bytes, rounded up to 832 (13 x 64).
        (100, 16, 0.5, 832),
        # A tiny scale still keeps 1 byte per token: 16 bytes, rounded up to 64.
        (131072, 16, 1e-9, 64),
        # Fractional bytes per token round up before the block total: 1.5 x 3 = 4.5 -> 5 -> 64.
        (3, 3, 0.5, 64),
    ],
)
def test_kv_block_bytes(
    kv_bytes_per_token: int, block_size_tokens: int, scale: float, expected: int
) -> None:
    assert kv_block_bytes(kv_bytes_per_token, block_size_tokens, scale) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 16, 1.0), "kv_bytes_per_token must be >= 1, got 0"),
        ((1, 0, 1.0), "block_size_tokens must be >= 1, got 0"),
        ((1, 16, 0.0), "scale must be a finite number > 0, got 0.0"),
        ((1, 16, float("nan")), "scale must be a finite number > 0, got nan"),
    ],
)
def test_kv_block_bytes_rejects_bad_input(args: tuple[int, int, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kv_block_bytes(*args)


@pytest.mark.parametrize(
    ("block_ids", "runs"),
    [
        ([], []),
        ([4], [(4, 1)]),
        ([0, 1, 2, 7, 8, 3], [(0, 3), (7, 2), (3, 1)]),
        # Descending ids are not a run: a run is read forwards as one buffer.
        ([3, 2, 1], [(3, 1), (2, 1), (1, 1)]),
    ],
)
def test_contiguous_runs(block_ids: list[int], runs: list[tuple[int, int]]) -> None:
    assert contiguous_runs(block_ids) == runs


def test_paired_runs_break_where_either_side_breaks() -> None:
    # src 0,1,2,3 is one run, but dst jumps after 11, so two paired runs.
    assert paired_runs([0, 1, 2, 3], [10, 11, 20, 21]) == [(0, 10, 2), (2, 20, 2)]
    with pytest.raises(ValueError, match="src_ids has 2 blocks but dst_ids has 1"):
        paired_runs([0, 1], [0])


def test_layout_views_and_addresses() -> None:
    arena = KvArena(4, 128)
    assert arena.total_bytes == 512
    assert arena.address(3) == arena.base_address + 3 * 128
    with arena.view(1, 2) as view:
        assert view.nbytes == 256
        view[0] = 42
    # The address really is the mapping: read block 1's first byte through it.
    assert ctypes.c_ubyte.from_address(arena.address(1)).value == 42
    for bad in [(-1, 1), (4, 1), (3, 2)]:
        with pytest.raises(IndexError, match="outside arena of 4 blocks"):
            arena.view(*bad)
    arena.close()
    arena.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        arena.view(0)


def test_fill_is_deterministic_and_seed_dependent() -> None:
    # 10,000 bytes: not a multiple of the 4 KiB pattern, so the tail copy is exercised.
    arena = KvArena(3, 10_000)
    arena.fill_block(0, 99)
    arena.fill_block(1, 99)
    arena.fill_block(2, 100)
    assert arena.checksum(0) == arena.checksum(1)
    assert arena.checksum(0) != arena.checksum(2)
    with arena.view(0) as block:
        # Seeds are taken mod 2**64, so a 64-bit block hash and its negative alias agree.
        assert bytes(block[4096:8192]) == bytes(block[:4096])
        assert len(set(bytes(block[:4096]))) > 200  # pseudo-random, not a constant
    arena.fill_block(2, 99 - (1 << 64))
    assert arena.checksum(2) == arena.checksum(0)
    arena.close()


@pytest.mark.parametrize("num_blocks, block_bytes", [(0, 64), (1, 0)])
def test_arena_rejects_empty_geometry(num_blocks: int, block_bytes: int) -> None:
    with pytest.raises(ValueError, match="must be >= 1, got 0"):
        KvArena(num_blocks, block_bytes)


def test_close_with_a_live_view_defers_unmapping() -> None:
    arena = KvArena(2, 64)
    view = arena.view(0)
    arena.close()  # must not raise: the worker is shutting down anyway
    view[0] = 1  # the mapping survives while the view does
    assert view[0] == 1
