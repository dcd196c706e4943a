"""prefix-cache-scorer: the share of the prompt a worker likely caches, from routing history.

llm-d's approximate prefix-cache scorer: with no events from the workers, assume
a worker caches the blocks of prompts this router recently sent it. Score =
leading prompt blocks recorded for the worker ÷ prompt blocks. After each pick
the chosen worker's prompt hashes are recorded (the plugin is a PickObserver).
History lives in the plugin's own `ApproximatePrefixIndex`: an LRU per worker
(llm-d's 31,250 blocks) whose entries expire after a TTL (Dynamo's 120 s).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.producers.approx_prefix_index import (
    DYNAMO_TTL_S,
    LLMD_CAPACITY_BLOCKS_PER_WORKER,
    ApproximatePrefixIndex,
)
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import CycleState, Endpoint, SchedulingRequest

TYPE_NAME = "prefix-cache-scorer"
SUMMARY = "Share of the prompt each worker likely caches, from this router's own picks."

# CycleState key: dict worker id → leading prompt blocks recorded for the worker,
# for the candidates the scorer saw.
MATCHES_KEY = "prefix-cache/matches"


class PrefixCacheParameters(PluginParameters):
    # Blocks remembered per worker before the least recently sent is forgotten.
    lru_capacity_per_worker: Annotated[int, Field(ge=1)] = LLMD_CAPACITY_BLOCKS_PER_WORKER
    # Seconds after which a recorded block is assumed evicted by the worker.
    ttl_seconds: Annotated[float, Field(gt=0)] = DYNAMO_TTL_S


def history_matches(
    index: ApproximatePrefixIndex, request: SchedulingRequest, worker_ids: Sequence[str]
) -> list[int]:
    """Leading prompt blocks recorded for each worker, aligned with `worker_ids`: in our
    history or, with shared state, any replica's (other replicas' picks count as ours)."""
    lengths = index.match_lengths(request.block_hashes, worker_ids)
    shared = request.shared_prefix_matches
    return [
        max(length, shared.get(worker_id, 0))
        for worker_id, length in zip(worker_ids, lengths, strict=True)
    ]


class PrefixCacheScorer:
    """Scores by recorded ÷ total prompt blocks and records each pick's prompt."""

    def __init__(self, name: str, index: ApproximatePrefixIndex) -> None:
        self.name = name
        self.index = index

    def score(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[float]:
        num_blocks = len(request.block_hashes)
        if num_blocks == 0:
            return [0.0] * len(candidates)

        def compute() -> dict[str, int]:
            worker_ids = [c.worker_id for c in candidates]
            lengths = history_matches(self.index, request, worker_ids)
            return dict(zip(worker_ids, lengths, strict=True))

        matches = state.memo(MATCHES_KEY, compute)
        return [matches[c.worker_id] / num_blocks for c in candidates]

    def on_picked(self, request: SchedulingRequest, endpoint: Endpoint) -> None:
        self.index.record(endpoint.worker_id, request.block_hashes)


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> PrefixCacheScorer:
    parsed = parse_parameters(PrefixCacheParameters, name, parameters)
    index = ApproximatePrefixIndex(
        context.clock,
        capacity_blocks_per_worker=parsed.lru_capacity_per_worker,
        ttl_s=parsed.ttl_seconds,
    )
    return PrefixCacheScorer(name, index)
