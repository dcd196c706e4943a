"""The host-memory KV tier: blocks the GPU cache evicted, kept in host DRAM to load back.

Like vLLM's CPU offloading, LMCache and SGLang's HiCache, a block evicted from GPU
memory is not lost: its KV is written to a bounded host tier (least recently used
out first), and a later prompt whose prefix continues there copies those blocks
back instead of recomputing them, when the copy is the cheaper of the two
(`triskel.common.kv_tiers.should_load`). The tier is inclusive: a block loaded back
keeps its host copy, so evicting it from GPU again costs no copy.

The mock engine holds no KV bytes, so the tier holds hashes: a block's hash and its
parent's, for the snapshot chains subscribers start from. What a copy costs is
charged to the step that loads it (`MockModelRunner`); writing evicted blocks out
is taken as overlapped with compute (offload engines copy asynchronously).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from itertools import takewhile

from triskel.common.hashing import BlockHash
from triskel.workers.engine.chains import chains_of

# (tokens to load, cached tokens before them) → load them rather than recompute?
LoadChoice = Callable[[int, int], bool]


class HostTier:
    """At most `num_blocks` blocks, by hash; `should_load` makes the load-or-recompute choice."""

    __slots__ = ("_parents", "num_blocks", "should_load")

    def __init__(self, num_blocks: int, should_load: LoadChoice) -> None:
        if num_blocks < 1:
            raise ValueError(f"num_host_kv_blocks: must be >= 1, got {num_blocks}")
        self.num_blocks = num_blocks
        self.should_load = should_load
        # hash → parent hash, least recently used first.
        self._parents: OrderedDict[BlockHash, BlockHash | None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._parents)

    def num_prefix(self, block_hashes: Sequence[BlockHash]) -> int:
        """How many leading blocks of `block_hashes` the tier holds."""
        return len(list(takewhile(self._parents.__contains__, block_hashes)))

    def touch(self, block_hashes: Sequence[BlockHash]) -> None:
        """Marks blocks as just used (being loaded back): last in line for eviction."""
        move = self._parents.move_to_end
        for block_hash in block_hashes:
            move(block_hash)

    def offload(
        self, block_hashes: Sequence[BlockHash], parent_hashes: Sequence[BlockHash | None]
    ) -> tuple[list[tuple[BlockHash, BlockHash | None]], list[BlockHash]]:
        """Takes blocks the GPU cache evicted: (blocks newly held, with their parents;
        blocks evicted from the tier to make room), in that order."""
        parents = self._parents
        stored: list[tuple[BlockHash, BlockHash | None]] = []
        for block_hash, parent in zip(block_hashes, parent_hashes, strict=True):
            if block_hash in parents:
                parents.move_to_end(block_hash)
            else:
                parents[block_hash] = parent
                stored.append((block_hash, parent))
        removed: list[BlockHash] = []
        while len(parents) > self.num_blocks:
            removed.append(parents.popitem(last=False)[0])
        return stored, removed

    def chains(self) -> list[list[BlockHash]]:
        """Every block held, as root-to-leaf chains (a snapshot for new subscribers)."""
        return chains_of(self._parents)
