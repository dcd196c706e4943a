"""KV cache events a worker publishes so routers can index which prefixes it holds.

Event ids start at 1 and increase by one per event, so a subscriber detects a gap
(and asks for a snapshot) when an id is skipped. The shape follows vLLM's
BlockStored / BlockRemoved events as consumed by Dynamo's and llm-d's KV indexers,
including vLLM's `medium`: an engine with a host tier reports the blocks it offloads
there (and drops from there) as events of medium HOST, in the same numbered sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

from triskel.common.hashing import BlockHash
from triskel.common.kv_tiers import KvMedium


@dataclass(frozen=True, slots=True)
class BlocksStored:
    """Full blocks newly cached, as one chain: each block's parent is the one before it.

    `parent_hash` is the parent of the first block, or None when the first block
    is a sequence's block 0.
    """

    event_id: int
    block_hashes: tuple[BlockHash, ...]
    parent_hash: BlockHash | None
    medium: KvMedium = KvMedium.GPU


@dataclass(frozen=True, slots=True)
class BlocksRemoved:
    """Cached blocks evicted to make room; their hashes are no longer served from
    `medium` (a GPU eviction offloaded to the host tier is also a HOST `BlocksStored`)."""

    event_id: int
    block_hashes: tuple[BlockHash, ...]
    medium: KvMedium = KvMedium.GPU


KvEvent = BlocksStored | BlocksRemoved
