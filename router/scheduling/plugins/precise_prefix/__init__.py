"""precise-prefix-scorer: the share of the prompt a worker really caches, per its KV events.

Score = effective matched blocks ÷ prompt blocks, read from the router's
`KvBlockIndex` (fed by the workers' KV events). A worker's effective matched
blocks are g + w·h: g leading prompt blocks in its GPU cache, h more continuing in
its host KV tier, each of those worth w = `host_hit_weight(profile)` (what loading
it back saves against recomputing it; 0 without a host link or profile). Without
host blocks this is llm-d's precise prefix-cache scorer and the overlap term of
Dynamo's KV router cost, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from triskel.common.kv_tiers import host_hit_weight
from triskel.router.scheduling.candidates import Candidates, FloatColumn
from triskel.router.scheduling.plugin import PluginContext, ScoresFromColumns
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import CycleState, Endpoint, SchedulingRequest

TYPE_NAME = "precise-prefix-scorer"
SUMMARY = "Share of the prompt each worker caches, from the workers' KV events."

# CycleState keys. TIER_COLUMNS: the columns (g, h) of the candidates they were
# computed for: prompt blocks matched in each one's GPU cache, then in its host tier
# after those (`KvBlockIndex.match_tier_columns`). TIERS and MATCHES, for plugins that
# read dicts, computed for the candidates seen first in the cycle (filters only remove
# candidates, so every later plugin finds its own): worker id → (g, h), and → g alone.
TIER_COLUMNS_KEY = "precise-prefix/tier-columns"
TIERS_KEY = "precise-prefix/tiers"
MATCHES_KEY = "precise-prefix/matches"


class PrecisePrefixParameters(PluginParameters):
    """No parameters: the index belongs to the router (see PluginContext.kv_index)."""


def tier_columns(
    kv_index: KvBlockIndex, request: SchedulingRequest, candidates: Candidates, state: CycleState
) -> tuple[FloatColumn, FloatColumn]:
    """(GPU, host) prompt blocks of each candidate, as columns, one walk per cycle."""

    def compute() -> tuple[FloatColumn, FloatColumn]:
        known: Mapping[str, tuple[int, int]] | None = state.get(TIERS_KEY)
        ids = candidates.worker_ids
        if known is not None and all(w in known for w in ids):
            # A filter walked the candidates before it narrowed them: read its walk.
            gpu = np.fromiter((known[w][0] for w in ids), np.float64, len(ids))
            host = np.fromiter((known[w][1] for w in ids), np.float64, len(ids))
            return gpu, host
        return kv_index.match_tier_columns(request.block_hashes, candidates)

    return state.memo_for(TIER_COLUMNS_KEY, candidates, compute)


def matched_tiers(
    kv_index: KvBlockIndex,
    request: SchedulingRequest,
    candidates: Sequence[Endpoint],
    state: CycleState,
) -> Mapping[str, tuple[int, int]]:
    """(GPU, host) prompt blocks each candidate holds, computed once per cycle."""

    def compute() -> dict[str, tuple[int, int]]:
        listed = Candidates.of(candidates)
        gpu, host = tier_columns(kv_index, request, listed, state)
        pairs = zip(gpu.astype(np.int64).tolist(), host.astype(np.int64).tolist(), strict=True)
        return dict(zip(listed.worker_ids, pairs, strict=True))

    tiers = state.memo(TIERS_KEY, compute)
    # Published with them: plugins reading the GPU counts share this one walk.
    state.memo(MATCHES_KEY, lambda: _gpu_counts(tiers))
    return tiers


def matched_blocks(
    kv_index: KvBlockIndex,
    request: SchedulingRequest,
    candidates: Sequence[Endpoint],
    state: CycleState,
) -> Mapping[str, int]:
    """Leading prompt blocks each candidate holds in GPU memory, computed once per cycle."""
    tiers = matched_tiers(kv_index, request, candidates, state)
    return state.memo(MATCHES_KEY, lambda: _gpu_counts(tiers))


def _gpu_counts(tiers: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    return {worker_id: gpu for worker_id, (gpu, _) in tiers.items()}


def effective_blocks(
    tiers: Iterable[tuple[int, int]], endpoints: Iterable[Endpoint]
) -> list[float]:
    """Per endpoint, aligned: g + w·h from its (g, h), GPU hits counted whole and host
    hits at the endpoint's `host_hit_weight`.

    Worked example (Llama-3.1-8B on H100 over a 50 GB/s host link, w = 0.94): 10 GPU
    blocks then 20 host blocks are worth 10 + 0.94 · 20 = 28.8 blocks. With no host hit
    it is g itself, so scores without host blocks stay what they were.
    """
    # One call per cycle, not per endpoint: this runs on every pick.
    return [
        gpu + host_hit_weight(endpoint.profile) * host if host else gpu
        for (gpu, host), endpoint in zip(tiers, endpoints, strict=True)
    ]


def effective_column(
    kv_index: KvBlockIndex, request: SchedulingRequest, candidates: Candidates, state: CycleState
) -> FloatColumn:
    """Per candidate, a column: its effective matched blocks (`effective_blocks`), from
    one index walk per cycle shared through `state`."""
    gpu, host = tier_columns(kv_index, request, candidates, state)
    rows = (host != 0).nonzero()[0]  # over booleans: nonzero over floats costs 7x more
    if not len(rows):
        return gpu
    # Only the few candidates with host hits differ from g.
    tiers = zip(
        gpu[rows].astype(np.int64).tolist(), host[rows].astype(np.int64).tolist(), strict=True
    )
    effective = gpu.copy()
    effective[rows] = effective_blocks(tiers, [candidates[row] for row in rows.tolist()])
    return effective


class PrecisePrefixScorer(ScoresFromColumns):
    """Scores by effective matched ÷ total prompt blocks (0 for all when the prompt has
    no full block)."""

    def __init__(self, name: str, kv_index: KvBlockIndex) -> None:
        self.name = name
        self._kv_index = kv_index

    def score_columns(
        self, request: SchedulingRequest, candidates: Candidates, state: CycleState
    ) -> FloatColumn:
        num_blocks = len(request.block_hashes)
        if num_blocks == 0:
            return np.zeros(len(candidates))
        effective = effective_column(self._kv_index, request, candidates, state)
        scores: FloatColumn = effective / num_blocks
        return scores


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> PrecisePrefixScorer:
    parse_parameters(PrecisePrefixParameters, name, parameters)
    return PrecisePrefixScorer(name, context.kv_index)
