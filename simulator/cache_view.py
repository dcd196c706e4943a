"""The router's KV index in the simulator, read straight from the engines' caches.

Live, every worker publishes KV events and the router's `KvBlockIndex` mirrors them
in its own map of block hash → workers. The simulator delivers each step's events
at once and in order, before anything else runs, so that mirror always equals the
engines' prefix caches. Reading the caches directly gives every plugin the same
answers without copying each block hash into a second map and out again, which
took a fifth of a run on 10k-token prompts (every prompt block is stored and
evicted twice: on its prefill and on its decode instance).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from triskel.common.hashing import BlockHash
from triskel.workers.engine.core import EngineCore


class CachedBlocksView:
    """`BlockLocations` over simulated engines, by worker id.

    Read-only: only the engines change what it holds, so `add`, `discard` and
    `clear_worker` (the event path) raise TypeError. Unknown workers hold nothing.
    `cores` is read live, not copied: instances an autoscaled run adds are seen.
    """

    __slots__ = ("_cores",)

    def __init__(self, cores: Mapping[str, EngineCore]) -> None:
        self._cores = cores

    def match_lengths(
        self, block_hashes: Sequence[BlockHash], worker_ids: Sequence[str]
    ) -> list[int]:
        lengths: list[int] = []
        for worker_id in worker_ids:
            core = self._cores.get(worker_id)
            lengths.append(0 if core is None else core.num_cached_prefix_blocks(block_hashes))
        return lengths

    def num_blocks(self, worker_id: str) -> int:
        core = self._cores.get(worker_id)
        return 0 if core is None else core.num_cached_blocks

    def add(self, worker_id: str, block_hashes: Iterable[BlockHash]) -> None:
        raise TypeError(f"{worker_id}: the simulated caches are read, not fed events")

    def discard(self, worker_id: str, block_hashes: Iterable[BlockHash]) -> None:
        raise TypeError(f"{worker_id}: the simulated caches are read, not fed events")

    def clear_worker(self, worker_id: str) -> None:
        raise TypeError(f"{worker_id}: the simulated caches are read, not fed events")
