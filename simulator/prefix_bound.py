"""The best prefix-cache hit ratio any router could reach on a trace.

One cache of unlimited size that every request goes through sees every prefix
computed before: no eviction, no prefix split across instances. A request's hit is
the longest prefix of its blocks that an earlier request already computed. No
cluster of finite, separate caches can do better, so a policy's hit ratio is best
read as a share of this bound.

Only full blocks count. Engines (vLLM, and Triskel's `triskel.common.hashing`) hash
and cache full blocks only, so a partly filled last block is never reusable, not
even by a request with the same ids: counting it would raise the bound above what
the engines can reach.

Prefixes live in a trie keyed by (parent node, block id): ids are compared by
position, so the bound stays right even if a trace reused an id at a different
depth. Each request costs one dict lookup per block, about 0.1 s for the 12,031
requests (~24 blocks each) of Mooncake's conversation trace.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from triskel.traces import TraceRequest

_ROOT = 0
"""Node id of the empty prefix."""


@dataclass(frozen=True, slots=True)
class PrefixBound:
    num_hit_tokens: int
    num_prompt_tokens: int

    @property
    def hit_ratio(self) -> float:
        """Hit tokens / prompt tokens; 0.0 for a trace without prompts (nothing to hit)."""
        return self.num_hit_tokens / self.num_prompt_tokens if self.num_prompt_tokens else 0.0


def prefix_hit_bound(requests: Iterable[TraceRequest]) -> PrefixBound:
    """Replays `requests` in the given (arrival) order through one infinite block cache.

    `Trace.requests` is already in arrival order. Requests without prefix ids
    (`prefix_block_tokens == 0`) hit nothing but still count in the prompt tokens.
    """
    # Nothing is ever evicted: a request hits every leading block an earlier one created.
    return _replay(requests, lambda path, num_known, block_tokens: num_known)


def pooled_lru_hit_ratio(requests: Iterable[TraceRequest], capacity_tokens: int) -> PrefixBound:
    """The hit ratio of one LRU cache of `capacity_tokens` that every request goes through.

    A reference, not a bound: it is what a cluster's caches would reach if they were
    pooled into one (no prefix split across instances) but kept the engines' LRU
    eviction. When it sits far below `prefix_hit_bound`, the cluster lacks cache
    capacity for the trace's reuse distances, which no routing policy can fix.
    A request's blocks are touched last-to-first, so its tail is evicted before its
    head, as engines free a finished request's blocks.
    """
    if capacity_tokens <= 0:
        raise ValueError(f"capacity_tokens must be > 0, got {capacity_tokens}")
    cached: OrderedDict[int, None] = OrderedDict()

    def hits_then_touch(path: list[int], num_known: int, block_tokens: int) -> int:
        num_hit_blocks = 0
        for node in path:
            if node not in cached:
                break
            num_hit_blocks += 1
        for node in reversed(path):
            cached[node] = None
            cached.move_to_end(node)
        capacity_blocks = capacity_tokens // block_tokens
        while len(cached) > capacity_blocks:
            cached.popitem(last=False)
        return num_hit_blocks

    return _replay(requests, hits_then_touch)


HitCounter = Callable[[list[int], int, int], int]
"""(trie path of a request's full blocks, how many of them existed before it, block
size) -> how many leading blocks hit."""


def _replay(requests: Iterable[TraceRequest], count_hits: HitCounter) -> PrefixBound:
    """Walks every request's full blocks through one trie; `count_hits` plays the cache."""
    children: dict[tuple[int, int], int] = {}
    num_hit_tokens = 0
    num_prompt_tokens = 0
    for request in requests:
        num_prompt_tokens += request.num_input_tokens
        block_tokens = request.prefix_block_tokens
        if block_tokens <= 0:
            continue
        num_full_blocks = min(
            len(request.prefix_block_ids), request.num_input_tokens // block_tokens
        )
        path, num_known = _path(children, request.prefix_block_ids[:num_full_blocks])
        num_hit_tokens += count_hits(path, num_known, block_tokens) * block_tokens
    return PrefixBound(num_hit_tokens=num_hit_tokens, num_prompt_tokens=num_prompt_tokens)


def _path(
    children: dict[tuple[int, int], int], block_ids: tuple[int, ...]
) -> tuple[list[int], int]:
    """The trie nodes of `block_ids`' prefixes, created as needed, and how many leading
    ones existed already."""
    node = _ROOT
    path = []
    num_known = 0
    is_known = True
    for block_id in block_ids:
        key = (node, block_id)
        child = children.get(key)
        if child is None:
            # Node ids are handed out in creation order; 0 is the root.
            child = len(children) + 1
            children[key] = child
            is_known = False
        elif is_known:
            num_known += 1
        path.append(child)
        node = child
    return path, num_known
