"""The router's KV index in the simulator, read straight from the engines' caches.

Live, every worker publishes KV events and the router's `KvBlockIndex` mirrors them
in its own map of block hash → workers. The simulator delivers each step's events
at once and in order, before anything else runs, so that mirror always equals the
engines' prefix caches. Reading the caches directly gives every plugin the same
answers without copying each block hash into a second map and out again, which
took a fifth of a run on 10k-token prompts (every prompt block is stored and
evicted twice: on its prefill and on its decode instance). Engines with a host KV
tier are read the same way, tier by tier: `CachedBlocksView` for GPU memory,
`CachedHostBlocksView` for the host tier (`KvBlockIndex.match_tiers` reads both).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.candidates import Candidates, FloatColumn
from triskel.router.scheduling.producers.kv_index import KvBlockIndex, lengths_column
from triskel.workers.engine.core import EngineCore


class _EngineCachesView(abc.ABC):
    """Read-only: only the engines change what it holds, so `add`, `discard` and
    `clear_worker` (the event path) raise TypeError. Unknown workers hold nothing.
    `cores` is read live, not copied: instances an autoscaled run adds are seen."""

    __slots__ = ("_cores",)

    def __init__(self, cores: Mapping[str, EngineCore]) -> None:
        self._cores = cores

    def match_lengths(
        self, block_hashes: Sequence[BlockHash], worker_ids: Sequence[str]
    ) -> list[int]:
        lengths: list[int] = []
        for worker_id in worker_ids:
            core = self._cores.get(worker_id)
            lengths.append(0 if core is None else self._num_prefix(core, block_hashes))
        return lengths

    def match_from(
        self, block_hashes: Sequence[BlockHash], starts: Sequence[int], worker_ids: Sequence[str]
    ) -> list[int]:
        lengths: list[int] = []
        for worker_id, start in zip(worker_ids, starts, strict=True):
            core = self._cores.get(worker_id)
            if core is None or start >= len(block_hashes):
                lengths.append(0)
            else:
                lengths.append(self._num_prefix(core, block_hashes[start:]))
        return lengths

    def match_column(
        self, block_hashes: Sequence[BlockHash], candidates: Candidates
    ) -> FloatColumn:
        # A handful of simulated instances: the list walk is as fast.
        return lengths_column(self.match_lengths(block_hashes, candidates.worker_ids))

    def match_from_column(
        self, block_hashes: Sequence[BlockHash], starts: FloatColumn, candidates: Candidates
    ) -> FloatColumn:
        starts_list = starts.astype(np.int64).tolist()
        return lengths_column(self.match_from(block_hashes, starts_list, candidates.worker_ids))

    @abc.abstractmethod
    def _num_prefix(self, core: EngineCore, block_hashes: Sequence[BlockHash]) -> int:
        """Leading blocks of `block_hashes` this view's tier of `core` holds."""

    def add(self, worker_id: str, block_hashes: Iterable[BlockHash]) -> None:
        raise TypeError(f"{worker_id}: the simulated caches are read, not fed events")

    def discard(self, worker_id: str, block_hashes: Iterable[BlockHash]) -> None:
        raise TypeError(f"{worker_id}: the simulated caches are read, not fed events")

    def clear_worker(self, worker_id: str) -> None:
        raise TypeError(f"{worker_id}: the simulated caches are read, not fed events")


class CachedBlocksView(_EngineCachesView):
    """`BlockLocations` over simulated engines' GPU prefix caches, by worker id."""

    __slots__ = ()

    def _num_prefix(self, core: EngineCore, block_hashes: Sequence[BlockHash]) -> int:
        return core.num_cached_prefix_blocks(block_hashes)

    def num_blocks(self, worker_id: str) -> int:
        core = self._cores.get(worker_id)
        return 0 if core is None else core.num_cached_blocks


class CachedHostBlocksView(_EngineCachesView):
    """`BlockLocations` over simulated engines' host KV tiers, by worker id (an engine
    without one holds nothing there)."""

    __slots__ = ()

    def match_from(
        self, block_hashes: Sequence[BlockHash], starts: Sequence[int], worker_ids: Sequence[str]
    ) -> list[int]:
        # Runs without host tiers (most) ask at every pick: answer before slicing prompts.
        cores = self._cores
        if all(cores[w].num_host_blocks == 0 for w in worker_ids if w in cores):
            return [0] * len(worker_ids)
        return super().match_from(block_hashes, starts, worker_ids)

    def _num_prefix(self, core: EngineCore, block_hashes: Sequence[BlockHash]) -> int:
        return core.num_host_prefix_blocks(block_hashes)

    def num_blocks(self, worker_id: str) -> int:
        core = self._cores.get(worker_id)
        return 0 if core is None else core.num_host_blocks


def engine_caches_index(cores: Mapping[str, EngineCore]) -> KvBlockIndex:
    """The router's KV index over `cores`' caches, both tiers (read live)."""
    return KvBlockIndex(CachedBlocksView(cores), CachedHostBlocksView(cores))
