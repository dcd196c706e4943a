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

Token runs are kept packed, 4 bytes a token (`array("I")`): a 12k-token prompt
becomes one bytes object instead of 12k Python ints per match and insert, and
comparing runs is a memcmp.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Sequence

# Per worker, a lazy min-heap of (tick, −end, sequence, node): the least recently
# inserted, deepest first. Entries whose tick is no longer the node's are stale.
_HeapEntry = tuple[int, int, int, "_Node"]
_MIN_HEAP_LIMIT = 64
_TOKEN_BYTES = 4  # a token id packed as an unsigned 32-bit int


class _Node:
    __slots__ = ("children", "end", "parent", "ticks", "tokens")

    def __init__(self, tokens: bytes, parent: _Node | None, end: int) -> None:
        self.tokens = tokens  # the edge's token ids, packed
        self.parent = parent
        self.end = end  # tokens from the root through this edge
        self.children: dict[bytes, _Node] = {}  # by the first token of their edge, packed
        self.ticks: dict[str, int] = {}  # worker id → tick of its last insert through here


def _packed(token_ids: Sequence[int]) -> bytes:
    if isinstance(token_ids, array) and token_ids.typecode == "I":
        return token_ids.tobytes()
    return array("I", token_ids).tobytes()


def _num_tokens(packed: bytes) -> int:
    return len(packed) // _TOKEN_BYTES


def _first_token(packed: bytes, at: int = 0) -> bytes:
    """The token at index `at` of a packed run, still packed (a child's key)."""
    return packed[at * _TOKEN_BYTES : (at + 1) * _TOKEN_BYTES]


def _common_length(edge: bytes, tokens: bytes, start: int) -> int:
    """How many leading tokens of the packed `edge` equal those of the packed `tokens`
    from token `start` (binary search on slices, so a long edge costs a few memcmps,
    not a Python loop per token)."""
    offset = start * _TOKEN_BYTES
    limit = min(_num_tokens(edge), _num_tokens(tokens) - start)
    if edge[: limit * _TOKEN_BYTES] == tokens[offset : offset + limit * _TOKEN_BYTES]:
        return limit
    low, high = 0, limit - 1  # edge's first low tokens match, its first high + 1 do not
    while low < high:
        middle = (low + high + 1) // 2
        size = middle * _TOKEN_BYTES
        if edge[:size] == tokens[offset : offset + size]:
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
        self._root = _Node(b"", None, 0)
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
        tokens = _packed(token_ids)
        num_tokens = _num_tokens(tokens)
        matched: dict[str, int] = {}
        active = set(worker_ids)
        node, depth = self._root, 0
        while active and depth < num_tokens:
            child = node.children.get(_first_token(tokens, depth))
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
            if common < _num_tokens(child.tokens):
                break
            node = child
        for worker_id in active:
            matched[worker_id] = depth
        return [matched.get(worker_id, 0) for worker_id in worker_ids]

    def insert(self, worker_id: str, token_ids: Sequence[int]) -> None:
        """Adds `token_ids` (the first `max_tokens_per_worker`) to `worker_id`'s tree, then
        evicts its least recently inserted leaves down to the bound."""
        tokens = _packed(token_ids[: self.max_tokens_per_worker])
        length = _num_tokens(tokens)
        self._tick += 1
        node, depth = self._root, 0
        num_tokens = self._num_tokens.get(worker_id, 0)
        while depth < length:
            key = _first_token(tokens, depth)
            child = node.children.get(key)
            if child is None:
                child = _Node(tokens[depth * _TOKEN_BYTES :], node, length)
                node.children[key] = child
            else:
                common = _common_length(child.tokens, tokens, depth)
                if common < _num_tokens(child.tokens):
                    child = self._split(child, common)
            if worker_id not in child.ticks:
                num_tokens += _num_tokens(child.tokens)
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
        cut = at * _TOKEN_BYTES
        upper = _Node(node.tokens[:cut], parent, node.end - _num_tokens(node.tokens) + at)
        parent.children[_first_token(upper.tokens)] = upper
        node.tokens = node.tokens[cut:]
        node.parent = upper
        upper.children[_first_token(node.tokens)] = node
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
            self._num_tokens[worker_id] -= _num_tokens(node.tokens)
            self._drop(worker_id, node)

    def _drop(self, worker_id: str, node: _Node) -> None:
        """Takes `worker_id` off `node`; a node nobody holds leaves the tree."""
        del node.ticks[worker_id]
        if not node.ticks and node.parent is not None:
            del node.parent.children[_first_token(node.tokens)]
            node.parent = None
