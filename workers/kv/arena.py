"""A worker's KV memory: one anonymous mmap cut into equal blocks.

    base_address
    │
    ▼
    ┌──────────────┬──────────────┬──────────────┬─────┐
    │ block 0      │ block 1      │ block 2      │ ... │   block i starts at
    └──────────────┴──────────────┴──────────────┴─────┘   base + i·block_bytes
     ◄ block_bytes ►

The mapping is anonymous and private, so the kernel hands out zeroed pages only
when a block is first touched: a big arena costs nothing until it is used. The
block content stands in for a real engine's K/V tensors; `fill_block` writes a
deterministic pattern so a receiver can check it, and `checksum` is what KV
handles carry per block.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import mmap
from collections.abc import Sequence

import xxhash

log = logging.getLogger(__name__)

# Bytes of seeded pseudo-random pattern repeated across a block: large enough that
# blocks from different seeds differ everywhere, small enough to make in ~10 µs.
_PATTERN_BYTES = 4096
_BLOCK_ALIGN_BYTES = 64
_SEED_MODULUS = 1 << 64


def kv_block_bytes(kv_bytes_per_token: int, block_size_tokens: int, scale: float) -> int:
    """Bytes per arena block: the model's KV bytes per block times `scale`.

    At least one byte per token survives the scaling, and the result is rounded up
    to a multiple of 64 so every block starts cache-line aligned.
    """
    if kv_bytes_per_token < 1:
        raise ValueError(f"kv_bytes_per_token must be >= 1, got {kv_bytes_per_token}")
    if block_size_tokens < 1:
        raise ValueError(f"block_size_tokens must be >= 1, got {block_size_tokens}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale}")
    per_token_bytes = max(1.0, kv_bytes_per_token * scale)
    raw_bytes = math.ceil(per_token_bytes * block_size_tokens)
    return -(-raw_bytes // _BLOCK_ALIGN_BYTES) * _BLOCK_ALIGN_BYTES


def contiguous_runs(block_ids: Sequence[int]) -> list[tuple[int, int]]:
    """`(first_block_id, num_blocks)` for each run of consecutive ids, in order.

    Moving a run as one buffer saves a syscall or a transfer op per block.
    """
    runs: list[tuple[int, int]] = []
    for block_id in block_ids:
        if runs and runs[-1][0] + runs[-1][1] == block_id:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((block_id, 1))
    return runs


def paired_runs(src_ids: Sequence[int], dst_ids: Sequence[int]) -> list[tuple[int, int, int]]:
    """`(src_first, dst_first, num_blocks)` runs consecutive on BOTH sides, in order."""
    if len(src_ids) != len(dst_ids):
        raise ValueError(f"src_ids has {len(src_ids)} blocks but dst_ids has {len(dst_ids)}")
    runs: list[tuple[int, int, int]] = []
    for src, dst in zip(src_ids, dst_ids, strict=True):
        if runs:
            src_first, dst_first, count = runs[-1]
            if src_first + count == src and dst_first + count == dst:
                runs[-1] = (src_first, dst_first, count + 1)
                continue
        runs.append((src, dst, 1))
    return runs


class KvArena:
    """`num_blocks` blocks of `block_bytes` each in one anonymous mapping.

    Views handed out by `view` must be released (or dropped) before `close`;
    a view still alive at `close` keeps the mapping until it is collected.
    """

    def __init__(self, num_blocks: int, block_bytes: int) -> None:
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        if block_bytes < 1:
            raise ValueError(f"block_bytes must be >= 1, got {block_bytes}")
        self.num_blocks = num_blocks
        self.block_bytes = block_bytes
        self._map: mmap.mmap | None = mmap.mmap(-1, num_blocks * block_bytes)
        self._buffer: memoryview | None = memoryview(self._map)
        # ctypes pins the buffer while its object lives; take the address and let it go.
        anchor = ctypes.c_char.from_buffer(self._map)
        self._base_address = ctypes.addressof(anchor)
        del anchor

    @property
    def base_address(self) -> int:
        """Absolute address of block 0 (what Mooncake registers)."""
        return self._base_address

    @property
    def total_bytes(self) -> int:
        return self.num_blocks * self.block_bytes

    def view(self, block_id: int, num_blocks: int = 1) -> memoryview:
        """A writable view of `num_blocks` consecutive blocks starting at `block_id`."""
        self._check_range(block_id, num_blocks)
        start = block_id * self.block_bytes
        return self._open_buffer()[start : start + num_blocks * self.block_bytes]

    def address(self, block_id: int) -> int:
        """Absolute address of `block_id`'s first byte."""
        self._check_range(block_id, 1)
        return self._base_address + block_id * self.block_bytes

    def fill_block(self, block_id: int, seed: int) -> None:
        """Overwrite the block with a pattern that depends only on `seed` (mod 2**64).

        The pattern is SHAKE-128 output repeated across the block: deterministic on
        every platform and fast (a doubling copy fills large blocks in log steps).
        """
        block = self.view(block_id)
        seed_bytes = (seed % _SEED_MODULUS).to_bytes(8, "little")
        pattern_bytes = min(_PATTERN_BYTES, self.block_bytes)
        block[:pattern_bytes] = hashlib.shake_128(seed_bytes).digest(pattern_bytes)
        filled_bytes = pattern_bytes
        while filled_bytes < self.block_bytes:
            copy_bytes = min(filled_bytes, self.block_bytes - filled_bytes)
            block[filled_bytes : filled_bytes + copy_bytes] = block[:copy_bytes]
            filled_bytes += copy_bytes
        block.release()

    def checksum(self, block_id: int) -> int:
        """XXH3-64 of the block's bytes."""
        with self.view(block_id) as block:
            return xxhash.xxh3_64_intdigest(block)

    def close(self) -> None:
        """Unmap the arena; idempotent."""
        if self._map is None:
            return
        assert self._buffer is not None
        try:
            self._buffer.release()
            self._map.close()
        except BufferError:
            # A view is still referenced somewhere (e.g. a traceback); unmapping now
            # would leave it dangling, so the mapping goes when the last view does.
            log.warning("KV arena closed while views of it are alive; unmapping deferred")
        self._buffer = None
        self._map = None

    def _open_buffer(self) -> memoryview:
        if self._buffer is None:
            raise RuntimeError("KV arena is closed")
        return self._buffer

    def _check_range(self, block_id: int, num_blocks: int) -> None:
        if num_blocks < 1 or not 0 <= block_id <= self.num_blocks - num_blocks:
            raise IndexError(
                f"block_id {block_id} (+{num_blocks} blocks) outside arena of "
                f"{self.num_blocks} blocks"
            )
