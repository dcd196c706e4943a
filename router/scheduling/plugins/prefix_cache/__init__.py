"""prefix-cache-scorer: the share of the prompt a worker likely caches, from routing history.

llm-d's approximate prefix-cache scorer: with no events from the workers, assume
a worker caches the blocks of prompts this router recently sent it. Score =
leading prompt blocks recorded for the worker ÷ prompt blocks. After each pick
the chosen worker's prompt hashes are recorded in the router's one routing history
(`producers/routing_history.py`, written by `Scheduler.sent`); this plugin reads its
`ApproximatePrefixIndex`: an LRU per worker (llm-d's 31,250 blocks) whose entries
expire after a TTL (Dynamo's 120 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from triskel.router.scheduling.candidates import Candidates, FloatColumn
from triskel.router.scheduling.plugin import PluginContext, ScoresFromColumns
from triskel.router.scheduling.producers.approx_prefix_index import (
    DYNAMO_TTL_S,
    LLMD_CAPACITY_BLOCKS_PER_WORKER,
    ApproximatePrefixIndex,
)
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import CycleState, SchedulingRequest

TYPE_NAME = "prefix-cache-scorer"
SUMMARY = "Share of the prompt each worker likely caches, from this router's own picks."

# CycleState key: the leading prompt blocks recorded for each candidate, a column
# aligned with the candidates it was computed for.
MATCHES_KEY = "prefix-cache/matches"


class HistoryBounds(PluginParameters):
    """How much of the routing history a reader keeps."""

    # Blocks remembered per worker before the least recently sent is forgotten.
    lru_capacity_per_worker: Annotated[int, Field(ge=1)] = LLMD_CAPACITY_BLOCKS_PER_WORKER
    # Seconds after which a recorded block is assumed evicted by the worker.
    ttl_seconds: Annotated[float, Field(gt=0)] = DYNAMO_TTL_S


class PrefixCacheParameters(HistoryBounds):
    # Leading prompt blocks looked at, matched and recorded (llm-d: 256); None: all.
    max_prefix_blocks: Annotated[int, Field(ge=1)] | None = None


def history_column(
    index: ApproximatePrefixIndex,
    request: SchedulingRequest,
    candidates: Candidates,
    max_prefix_blocks: int | None = None,
) -> FloatColumn:
    """Leading prompt blocks recorded for each candidate (of its first
    `max_prefix_blocks`, or all), a column: in our history or, with shared state, any
    replica's (other replicas' picks count as ours)."""
    hashes = request.block_hashes
    if max_prefix_blocks is not None:
        hashes = hashes[:max_prefix_blocks]
    lengths = index.match_column(hashes, candidates)
    shared = request.shared_prefix_matches
    if not shared:
        return lengths
    lengths = lengths.copy()
    for worker_id, length in shared.items():
        row = candidates.row_of(worker_id)
        length = min(length, len(hashes))
        if row is not None and length > lengths[row]:
            lengths[row] = length
    return lengths


class PrefixCacheScorer(ScoresFromColumns):
    """Scores by recorded ÷ total prompt blocks (the history records the picks)."""

    def __init__(
        self, name: str, index: ApproximatePrefixIndex, max_prefix_blocks: int | None = None
    ) -> None:
        self.name = name
        self.index = index
        self._max_blocks = max_prefix_blocks

    def score_columns(
        self, request: SchedulingRequest, candidates: Candidates, state: CycleState
    ) -> FloatColumn:
        num_blocks = len(request.block_hashes)
        if self._max_blocks is not None:
            num_blocks = min(num_blocks, self._max_blocks)
        if num_blocks == 0:
            return np.zeros(len(candidates))
        matches = state.memo_for(
            MATCHES_KEY,
            candidates,
            lambda: history_column(self.index, request, candidates, self._max_blocks),
        )
        scores: FloatColumn = matches / num_blocks
        return scores


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> PrefixCacheScorer:
    parsed = parse_parameters(PrefixCacheParameters, name, parameters)
    index = context.history.index(
        parsed.lru_capacity_per_worker, parsed.ttl_seconds, parsed.max_prefix_blocks
    )
    return PrefixCacheScorer(name, index, parsed.max_prefix_blocks)
