"""Request-level KV bookkeeping on top of the block pool.

The scheduler reaches KV blocks only through this small API (as nano-vllm's
scheduler uses its BlockManager): find a request's prefix-cache hit (in GPU
memory, then what the host tier can load back after it), check and allocate the
slots a step needs, cache blocks once their tokens are computed, free a request's
blocks.

A request's block hashes come from `triskel.common.hashing` (chained, seeded
with the model name and salt), computed lazily as its tokens become known, so
output tokens are cached too and a follow-up turn that repeats them hits.
"""

from __future__ import annotations

from triskel.common.hashing import chain_block_hashes, root_hash
from triskel.workers.engine.block_pool import BlockPool
from triskel.workers.engine.request import RequestState


def _cdiv(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


class KvCacheManager:
    __slots__ = (
        "_root_hash",
        "block_size_tokens",
        "pool",
    )

    def __init__(self, pool: BlockPool, block_size_tokens: int, model: str, salt: str = "") -> None:
        if block_size_tokens < 1:
            raise ValueError(f"block_size_tokens: must be >= 1, got {block_size_tokens}")
        self.pool = pool
        self.block_size_tokens = block_size_tokens
        self._root_hash = root_hash(model, salt)

    def num_blocks_for(self, num_tokens: int) -> int:
        """Blocks that hold `num_tokens` tokens."""
        return _cdiv(num_tokens, self.block_size_tokens)

    def find_prefix_hit(self, state: RequestState, max_blocks: int) -> list[int]:
        """Cached blocks for the longest prefix of `state`'s tokens, at most `max_blocks`."""
        if max_blocks <= 0:
            return []
        self._extend_hashes(state, max_blocks)
        return self.pool.find_cached_prefix(state.block_hashes[:max_blocks])

    def num_blocks_to_load(self, state: RequestState, num_hits: int, max_blocks: int) -> int:
        """How many blocks after `state`'s `num_hits` GPU hits to load back from the host
        tier (at most up to `max_blocks`): its run there, or 0 when recomputing them is
        cheaper, or there is no host tier."""
        host = self.pool.host
        if host is None or num_hits >= max_blocks:
            return 0
        self._extend_hashes(state, max_blocks)
        num_blocks = host.num_prefix(state.block_hashes[num_hits:max_blocks])
        size = self.block_size_tokens
        if num_blocks and host.should_load(num_blocks * size, num_hits * size):
            return num_blocks
        return 0

    def can_allocate(
        self,
        state: RequestState,
        num_new_tokens: int,
        hit_blocks: list[int] | None = None,
        num_loaded: int = 0,
    ) -> bool:
        """Whether the pool can supply what `allocate` would take, without evicting hits."""
        hits = hit_blocks or []
        num_new_blocks = self._num_new_blocks(state, num_new_tokens, len(hits) + num_loaded)
        return self.pool.can_allocate(num_new_blocks + num_loaded + self.pool.num_evictable(hits))

    def allocate(
        self,
        state: RequestState,
        num_new_tokens: int,
        hit_blocks: list[int] | None = None,
        num_loaded: int = 0,
    ) -> None:
        """Gives `state` its cache-hit blocks and `num_loaded` blocks loaded back from the
        host tier after them (both counted as computed), and slots for new tokens.

        Hits and loads only apply to a request without blocks (one being admitted).
        """
        hits = hit_blocks or []
        if hits or num_loaded:
            if state.block_ids:
                raise ValueError(
                    f"hit_blocks: request {state.request_id} already holds "
                    f"{len(state.block_ids)} blocks"
                )
            self.pool.touch(hits)
            state.block_ids = list(hits)
            state.num_computed_tokens = len(hits) * self.block_size_tokens
            state.num_registered_blocks = len(hits)
            if num_loaded:
                self._load(state, num_loaded)
        num_new_blocks = self._num_new_blocks(state, num_new_tokens, 0)
        if num_new_blocks > 0:
            state.block_ids.extend(self.pool.allocate(num_new_blocks))

    def _load(self, state: RequestState, num_blocks: int) -> None:
        """Fresh GPU blocks for the host tier's next `num_blocks` blocks of `state`, cached
        at once: the copy is charged to the step (`ScheduledBatch.num_loaded_tokens`)."""
        host = self.pool.host
        if host is None:
            raise ValueError(f"num_loaded: {num_blocks} blocks, but there is no host tier")
        start = len(state.block_ids)
        loaded_hashes = state.block_hashes[start : start + num_blocks]
        # First, so the allocation's own evictions cannot push them out of the tier.
        host.touch(loaded_hashes)
        state.block_ids.extend(self.pool.allocate(num_blocks))
        state.num_computed_tokens += num_blocks * self.block_size_tokens
        self.cache_computed_blocks(state)

    def num_new_blocks(self, state: RequestState, num_new_tokens: int) -> int:
        """Blocks `state` still needs to feed `num_new_tokens` more tokens (no hits)."""
        num_tokens_after = state.num_computed_tokens + num_new_tokens
        return max(0, -(-num_tokens_after // self.block_size_tokens) - len(state.block_ids))

    def allocate_blocks(self, state: RequestState, num_blocks: int) -> None:
        """Appends `num_blocks` fresh blocks to `state` (see `num_new_blocks`)."""
        state.block_ids.extend(self.pool.allocate(num_blocks))

    def cache_computed_blocks(self, state: RequestState) -> None:
        """Caches every full block of `state` whose tokens are all computed."""
        num_full = state.num_computed_tokens // self.block_size_tokens
        start = state.num_registered_blocks
        if num_full <= start:
            return
        self._extend_hashes(state, num_full)
        parent = state.block_hashes[start - 1] if start else None
        self.pool.cache_blocks(
            state.block_ids[start:num_full], state.block_hashes[start:num_full], parent
        )
        state.num_registered_blocks = num_full

    def free(self, state: RequestState) -> None:
        """Releases `state`'s blocks, tail first; cached ones stay as prefix hits."""
        self.pool.free(reversed(state.block_ids))
        state.block_ids = []
        state.num_registered_blocks = 0

    def _num_new_blocks(self, state: RequestState, num_new_tokens: int, num_hits: int) -> int:
        num_tokens_after = (
            state.num_computed_tokens + num_hits * self.block_size_tokens + num_new_tokens
        )
        return max(0, self.num_blocks_for(num_tokens_after) - len(state.block_ids) - num_hits)

    def _extend_hashes(self, state: RequestState, num_blocks: int) -> None:
        """Hashes `state`'s full blocks up to `num_blocks` (those not hashed yet)."""
        hashes = state.block_hashes
        size = self.block_size_tokens
        first = len(hashes)
        num_blocks = min(num_blocks, state.num_tokens // size)
        if num_blocks > first:
            parent = hashes[-1] if hashes else self._root_hash
            tokens = state.token_ids[first * size : num_blocks * size]
            hashes.extend(chain_block_hashes(parent, tokens, size))
