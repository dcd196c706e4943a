"""Cached blocks as chains, the shape KV events and snapshots carry them in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from triskel.common.hashing import BlockHash


def chains_of(parent_of: Mapping[BlockHash, BlockHash | None]) -> list[list[BlockHash]]:
    """Every block of `parent_of` (hash → parent hash) in root-to-leaf chains.

    Each chain starts at a block whose parent is not held (normally a sequence's
    block 0) and ends at a block with no held child; a shared prefix appears in every
    chain that extends it.
    """
    has_child = {parent for parent in parent_of.values() if parent in parent_of}
    chains: list[list[BlockHash]] = []
    for leaf in parent_of:
        if leaf in has_child:
            continue
        chain = [leaf]
        parent = parent_of[leaf]
        while parent is not None and parent in parent_of:
            chain.append(parent)
            parent = parent_of[parent]
        chain.reverse()
        chains.append(chain)
    return chains


def chain_runs(
    blocks: Sequence[tuple[BlockHash, BlockHash | None]],
) -> list[tuple[list[BlockHash], BlockHash | None]]:
    """`blocks` (hash, parent) cut into runs where each block's parent is the one before
    it, as a KV event carries them: (hashes, the first one's parent)."""
    runs: list[tuple[list[BlockHash], BlockHash | None]] = []
    for block_hash, parent in blocks:
        if runs and runs[-1][0][-1] == parent:
            runs[-1][0].append(block_hash)
        else:
            runs.append(([block_hash], parent))
    return runs
