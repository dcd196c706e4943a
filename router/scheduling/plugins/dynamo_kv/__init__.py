"""NVIDIA Dynamo's KV router cost, re-implemented as a picker for comparison.

For each candidate i (Dynamo's KV router, see README.md):

    prefill_blocks_i = (prompt tokens − overlap_blocks_i · block size
                        + active prefill tokens_i) / block size
    decode_blocks_i  = active decode blocks_i
    cost_i           = overlapWeight · prefill_blocks_i + decode_blocks_i

`overlap_blocks_i` comes from the precise KV index (the workers' KV events):
g + w·h, its GPU prefix plus the host-tier blocks after it at the worker's
`host_hit_weight` (g alone when it has no host hit, which is Dynamo's overlap).
With `temperature` 0 the lowest cost wins; ties go to the worker with the fewest
blocks in the index (the smaller radix tree, as Dynamo breaks them), then to a
random one. With `temperature` T > 0 the pick is sampled:
p_i ∝ exp(−(c_i − c_min) / ((c_max − c_min) · T)), uniform when all costs are equal.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins.precise_prefix import effective_blocks
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import (
    CycleState,
    Endpoint,
    SchedulingRequest,
    ScoredEndpoint,
)

TYPE_NAME = "dynamo-kv-cost"
SUMMARY = "Dynamo's KV router: lowest overlapWeight·prefill blocks + decode blocks (or softmax)"
REASON = "dynamo-kv"


class DynamoKvParameters(PluginParameters):
    # 0 ignores the cache and balances load only; Dynamo's default is 1.
    overlap_weight: Annotated[float, Field(ge=0)] = 1.0
    # 0 picks the lowest cost; larger values spread picks more evenly.
    temperature: Annotated[float, Field(ge=0)] = 0.0


def kv_costs(
    request: SchedulingRequest,
    endpoints: Sequence[Endpoint],
    overlap_blocks: Sequence[float],
    overlap_weight: float,
) -> list[float]:
    """Dynamo's cost per endpoint, aligned with `endpoints` (lower is better)."""
    num_prompt_tokens = request.num_prompt_tokens
    return [
        overlap_weight
        * (max(0, num_prompt_tokens - overlap * e.block_size_tokens) + e.active.num_prefill_tokens)
        / e.block_size_tokens
        + e.active.num_decode_blocks
        for e, overlap in zip(endpoints, overlap_blocks, strict=True)
    ]


def softmax_weights(costs: Sequence[float], temperature: float) -> list[float]:
    """Unnormalised p_i ∝ exp(−(c_i − c_min)/((c_max − c_min)·T)); all 1 when costs tie."""
    low, high = min(costs), max(costs)
    if high == low:
        return [1.0] * len(costs)
    scale = (high - low) * temperature
    return [math.exp(-(c - low) / scale) for c in costs]


class DynamoKvPicker:
    """Picks by Dynamo's KV cost (see the module docstring)."""

    def __init__(
        self,
        name: str,
        parameters: DynamoKvParameters,
        kv_index: KvBlockIndex,
        rng: random.Random,
    ) -> None:
        self.name = name
        self.parameters = parameters
        self._kv_index = kv_index
        self._rng = rng

    def pick(
        self, request: SchedulingRequest, scored: Sequence[ScoredEndpoint], state: CycleState
    ) -> tuple[Endpoint, str]:
        endpoints = [s.endpoint for s in scored]
        worker_ids = [e.worker_id for e in endpoints]
        tiers = self._kv_index.match_tiers(request.block_hashes, worker_ids)
        overlaps = effective_blocks(tiers, endpoints)
        costs = kv_costs(request, endpoints, overlaps, self.parameters.overlap_weight)
        if self.parameters.temperature > 0:
            weights = softmax_weights(costs, self.parameters.temperature)
            return self._rng.choices(endpoints, weights=weights)[0], REASON
        lowest = min(costs)
        tied = [i for i, c in enumerate(costs) if c == lowest]
        if len(tied) > 1:
            sizes = [self._kv_index.num_blocks(worker_ids[i]) for i in tied]
            smallest = min(sizes)
            tied = [i for i, size in zip(tied, sizes, strict=True) if size == smallest]
        chosen = tied[0] if len(tied) == 1 else self._rng.choice(tied)
        return endpoints[chosen], REASON


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> DynamoKvPicker:
    return DynamoKvPicker(
        name, parse_parameters(DynamoKvParameters, name, parameters), context.kv_index, context.rng
    )
