"""hybrid-prefix-scorer: the larger of two kinds of prefix evidence, per worker.

Score = max(history, events) ÷ prompt blocks, with

    history  leading prompt blocks this router recently sent the worker (the
             routing history prefix-cache-scorer reads; with Redis, the
             longer of ours and the other replicas' shared history)
    events   g + w·h from the workers' KV events (precise-prefix-scorer: g blocks
             in GPU memory, then h in the host tier, each worth w)

Both are evidence of one fact, that the worker holds these blocks, and each sees
what the other misses: history knows prompts still prefilling (not yet reported: a
burst of agent turns), events know blocks history has forgotten (a conversation
coming back after the 120 s TTL, its blocks now in the host tier). Two scorers at
half weight each would halve the pull of whichever one alone knows; the max gives
either its full weight and counts a block both know once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from triskel.router.scheduling.candidates import Candidates, FloatColumn
from triskel.router.scheduling.plugin import PluginContext, ScoresFromColumns
from triskel.router.scheduling.plugins.precise_prefix import effective_column
from triskel.router.scheduling.plugins.prefix_cache import HistoryBounds, history_column
from triskel.router.scheduling.producers.approx_prefix_index import ApproximatePrefixIndex
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.registry import parse_parameters
from triskel.router.scheduling.types import CycleState, SchedulingRequest

TYPE_NAME = "hybrid-prefix-scorer"
SUMMARY = "Share of the prompt each worker holds: max of this router's history and KV events."

# CycleState key: effective matched blocks, max(history, events), a column aligned
# with the candidates it was computed for.
MATCHES_KEY = "hybrid-prefix/matches"


class HybridPrefixParameters(HistoryBounds):
    """The history's bounds (prefix-cache-scorer's); the KV index is the router's."""


class HybridPrefixScorer(ScoresFromColumns):
    """Scores by max(history, events) ÷ prompt blocks (the history records the picks)."""

    def __init__(self, name: str, history: ApproximatePrefixIndex, kv_index: KvBlockIndex) -> None:
        self.name = name
        self.history = history
        self._kv_index = kv_index

    def score_columns(
        self, request: SchedulingRequest, candidates: Candidates, state: CycleState
    ) -> FloatColumn:
        num_blocks = len(request.block_hashes)
        if num_blocks == 0:
            return np.zeros(len(candidates))

        def compute() -> FloatColumn:
            sent = history_column(self.history, request, candidates)
            held = effective_column(self._kv_index, request, candidates, state)
            return np.maximum(sent, held)

        matches = state.memo_for(MATCHES_KEY, candidates, compute)
        scores: FloatColumn = matches / num_blocks
        return scores


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> HybridPrefixScorer:
    parsed = parse_parameters(HybridPrefixParameters, name, parameters)
    history = context.history.index(parsed.lru_capacity_per_worker, parsed.ttl_seconds)
    return HybridPrefixScorer(name, history, context.kv_index)
