"""precise-prefix-scorer: the share of the prompt a worker really caches, per its KV events.

Score = leading prompt blocks the worker holds ÷ prompt blocks, read from the
router's `KvBlockIndex` (fed by the workers' KV events). This is llm-d's precise
prefix-cache scorer and the overlap term of Dynamo's KV router cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import CycleState, Endpoint, SchedulingRequest

TYPE_NAME = "precise-prefix-scorer"
SUMMARY = "Share of the prompt each worker caches, from the workers' KV events."

# CycleState key: dict worker id → leading prompt blocks the worker holds. Computed
# for the candidates seen first in the cycle; filters only remove candidates, so
# every later plugin finds its own.
MATCHES_KEY = "precise-prefix/matches"


class PrecisePrefixParameters(PluginParameters):
    """No parameters: the index belongs to the router (see PluginContext.kv_index)."""


def matched_blocks(
    kv_index: KvBlockIndex,
    request: SchedulingRequest,
    candidates: Sequence[Endpoint],
    state: CycleState,
) -> Mapping[str, int]:
    """Leading prompt blocks each candidate holds, computed once per cycle."""

    def compute() -> dict[str, int]:
        worker_ids = [c.worker_id for c in candidates]
        lengths = kv_index.match_lengths(request.block_hashes, worker_ids)
        return dict(zip(worker_ids, lengths, strict=True))

    return state.memo(MATCHES_KEY, compute)


class PrecisePrefixScorer:
    """Scores by matched ÷ total prompt blocks (0 for all when the prompt has no full block)."""

    def __init__(self, name: str, kv_index: KvBlockIndex) -> None:
        self.name = name
        self._kv_index = kv_index

    def score(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[float]:
        num_blocks = len(request.block_hashes)
        if num_blocks == 0:
            return [0.0] * len(candidates)
        matches = matched_blocks(self._kv_index, request, candidates, state)
        return [matches[c.worker_id] / num_blocks for c in candidates]


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> PrecisePrefixScorer:
    parse_parameters(PrecisePrefixParameters, name, parameters)
    return PrecisePrefixScorer(name, context.kv_index)
