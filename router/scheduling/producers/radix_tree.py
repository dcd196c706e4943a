"""Approximate per-worker prefix caches: a radix tree of the token ids sent to each worker.

SGLang's router (sgl-router, cache-aware policy) keeps such trees instead of
listening to the workers' KV events: whatever it routed to a worker is assumed
cached there, and each worker's tree is trimmed to a size bound by evicting its
least recently used leaves, the way the engines themselves evict.

Like SGLang's, the per-worker trees share one structure: each node holds a run of
token ids and the workers ("tenants") whose tree contains it, so one walk down
the prompt answers every candidate at once.

    root ─ (1 2 3){a,b} ─┬─ (4 5){a}      a was sent [1 2 3 4 5], b [1 2 3 9]
                         └─ (9){b}        match [1 2 3 4 7] → a: 4, b: 3

A worker holding a node holds all its ancestors. Each node remembers, per
worker, the tick of the last insert through it; only `insert` counts as a use
(matching runs for every candidate and says nothing about what a worker keeps).
Eviction takes a worker off its least recently inserted leaf node (the deeper
one on a tie); another worker's insert may have split that node, so eviction
can be finer than what this worker inserted, never coarser.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

# Per worker, a lazy min-heap of (tick, −end, sequence, node): the least recently
# inserted, deepest first. Entries whose tick is no longer the node's are stale.
_HeapEntry = tuple[int, int, int, "_Node"]
_MIN_HEAP_LIMIT = 64


class _Node:
    __slots__ = ("children", "end", "parent", "ticks", "tokens")

    def __init__(self, tokens: tuple[int, ...], parent: _Node | None, end: int) -> None:
        self.tokens = tokens
        self.parent = parent
        self.end = end  # tokens from the root through this edge
        self.children: dict[int, _Node] = {}
        self.ticks: dict[str, int] = {}  # worker id → tick of its last insert through here


def _common_length(edge: tuple[int, ...], tokens: tuple[int, ...], start: int) -> int:
    """How many leading tokens of `edge` equal `tokens[start:]` (binary search on slices,
    so a long edge costs a few C-level comparisons, not a Python loop per token)."""
    limit = min(len(edge), len(tokens) - start)
    if edge[:limit] == tokens[start : start + limit]:
        return limit
    low, high = 0, limit - 1  # edge[:low] matches, edge[:high + 1] does not
    while low < high:
        middle = (low + high + 1) // 2
        if edge[:middle] == tokens[start : start + middle]:
            low = middle
        else:
            high = middle - 1
    return low


class RadixTrees:
    """Every worker's tree of token prefixes, at most `max_tokens_per_worker` tokens each."""

    __slots__ = (
        "_heap_limits",
        "_heaps",
        "_num_tokens",
        "_root",
        "_sequence",
        "_tick",
        "max_tokens_per_worker",
    )

    def __init__(self, max_tokens_per_worker: int) -> None:
        if max_tokens_per_worker < 1:
            raise ValueError(f"max_tokens_per_worker must be >= 1, got {max_tokens_per_worker}")
        self.max_tokens_per_worker = max_tokens_per_worker
        self._root = _Node((), None, 0)
        self._num_tokens: dict[str, int] = {}
        self._heaps: dict[str, list[_HeapEntry]] = {}
        self._heap_limits: dict[str, int] = {}
        self._tick = 0
        self._sequence = 0

    def num_tokens(self, worker_id: str) -> int:
        """The size of `worker_id`'s tree in tokens (0 for a worker never sent anything)."""
        return self._num_tokens.get(worker_id, 0)

    def match_lengths(self, token_ids: Sequence[int], worker_ids: Sequence[str]) -> list[int]:
        """Leading tokens of `token_ids` each worker's tree holds, aligned with `worker_ids`."""
        tokens = tuple(token_ids)
        matched: dict[str, int] = {}
        active = set(worker_ids)
        node, depth = self._root, 0
        while active and depth < len(tokens):
            child = node.children.get(tokens[depth])
            if child is None:
                break
            holders = child.ticks
            # Scan the smaller side: few candidates against a node every worker holds.
            if len(active) <= len(holders):
                still = {w for w in active if w in holders}
            else:
                still = active.intersection(holders)
            for worker_id in active - still:
                matched[worker_id] = depth
            active = still
            common = _common_length(child.tokens, tokens, depth)
            depth += common
            if common < len(child.tokens):
                break
            node = child
        for worker_id in active:
            matched[worker_id] = depth
        return [matched.get(worker_id, 0) for worker_id in worker_ids]

    def insert(self, worker_id: str, token_ids: Sequence[int]) -> None:
        """Adds `token_ids` (the first `max_tokens_per_worker`) to `worker_id`'s tree, then
        evicts its least recently inserted leaves down to the bound."""
        tokens = tuple(token_ids[: self.max_tokens_per_worker])
        self._tick += 1
        node, depth = self._root, 0
        num_tokens = self._num_tokens.get(worker_id, 0)
        while depth < len(tokens):
            child = node.children.get(tokens[depth])
            if child is None:
                child = _Node(tokens[depth:], node, len(tokens))
                node.children[tokens[depth]] = child
            else:
                common = _common_length(child.tokens, tokens, depth)
                if common < len(child.tokens):
                    child = self._split(child, common)
            if worker_id not in child.ticks:
                num_tokens += len(child.tokens)
            self._touch(worker_id, child, self._tick)
            node, depth = child, child.end
        self._num_tokens[worker_id] = num_tokens
        self._evict(worker_id)

    def remove_worker(self, worker_id: str) -> None:
        """Forgets `worker_id`'s tree."""
        stack = [c for c in self._root.children.values() if worker_id in c.ticks]
        while stack:
            node = stack.pop()
            stack.extend(c for c in node.children.values() if worker_id in c.ticks)
            self._drop(worker_id, node)
        self._num_tokens.pop(worker_id, None)
        self._heaps.pop(worker_id, None)
        self._heap_limits.pop(worker_id, None)

    def _split(self, node: _Node, at: int) -> _Node:
        """Cuts `node`'s edge after `at` tokens; returns the new upper half.

        `node` stays the lower half (same end, same heap entries); the upper half
        inherits every holder's tick, so it sorts after the lower one in each heap.
        """
        parent = node.parent
        assert parent is not None  # the root has no edge to split
        upper = _Node(node.tokens[:at], parent, node.end - len(node.tokens) + at)
        parent.children[upper.tokens[0]] = upper
        node.tokens = node.tokens[at:]
        node.parent = upper
        upper.children[node.tokens[0]] = node
        for holder, tick in node.ticks.items():
            self._touch(holder, upper, tick)
        return upper

    def _touch(self, worker_id: str, node: _Node, tick: int) -> None:
        node.ticks[worker_id] = tick
        heap = self._heaps.setdefault(worker_id, [])
        self._sequence += 1
        heapq.heappush(heap, (tick, -node.end, self._sequence, node))
        if len(heap) > self._heap_limits.get(worker_id, _MIN_HEAP_LIMIT):
            # Drop stale entries; the limit doubles the live size, so this is amortised O(1).
            heap[:] = [e for e in heap if e[3].ticks.get(worker_id) == e[0]]
            heapq.heapify(heap)
            self._heap_limits[worker_id] = max(_MIN_HEAP_LIMIT, 2 * len(heap))

    def _evict(self, worker_id: str) -> None:
        # A held child's tick never exceeds its parent's and its end is deeper, so the
        # first live entry is always one of the worker's leaves.
        heap = self._heaps.get(worker_id, [])
        while self._num_tokens[worker_id] > self.max_tokens_per_worker:
            tick, _, _, node = heapq.heappop(heap)
            if node.ticks.get(worker_id) != tick:
                continue
            assert not any(worker_id in c.ticks for c in node.children.values())
            self._num_tokens[worker_id] -= len(node.tokens)
            self._drop(worker_id, node)

    def _drop(self, worker_id: str, node: _Node) -> None:
        """Takes `worker_id` off `node`; a node nobody holds leaves the tree."""
        del node.ticks[worker_id]
        if not node.ticks and node.parent is not None:
            del node.parent.children[node.tokens[0]]
            node.parent = None
