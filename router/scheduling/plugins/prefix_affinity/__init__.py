"""prefix-affinity-filter: send a prompt only where it is cached, unless that is much slower.

llm-d's hot-spot fix for prefix-aware routing: keep the candidates whose precise
prefix score (leading blocks held ÷ prompt blocks, from the workers' KV events)
is at least `threshold`, so load scorers only choose among cache holders. When
the best cache holder's predicted TTFT exceeds the best other worker's by more
than `maxTtftPenaltyMs` (the holders are a hot spot), keep every candidate and
let the scorers spread the load. No candidate over the threshold → keep all.
TTFT is predicted from each worker's profile and queued work
(`producers/latency_predictor.predict_ttft_ms`) over its uncached tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins.precise_prefix import matched_blocks
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.producers.latency_predictor import predict_ttft_ms
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import CycleState, Endpoint, SchedulingRequest

TYPE_NAME = "prefix-affinity-filter"
SUMMARY = "Keeps workers caching most of the prompt unless their predicted TTFT is much worse."


class PrefixAffinityParameters(PluginParameters):
    # Minimum share of prompt blocks cached for a worker to count as a cache holder.
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.8
    # Extra predicted TTFT (ms) tolerated to stay on a cache holder.
    max_ttft_penalty_ms: Annotated[float, Field(ge=0)] = 1000.0


class PrefixAffinityFilter:
    def __init__(
        self, name: str, kv_index: KvBlockIndex, threshold: float, max_ttft_penalty_ms: float
    ) -> None:
        self.name = name
        self._kv_index = kv_index
        self._threshold = threshold
        self._max_ttft_penalty_ms = max_ttft_penalty_ms

    def filter(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[Endpoint]:
        num_blocks = len(request.block_hashes)
        if num_blocks == 0:
            return list(candidates)
        matches = matched_blocks(self._kv_index, request, candidates, state)
        threshold = self._threshold
        cached: list[Endpoint] = []
        uncached: list[Endpoint] = []
        for candidate in candidates:
            is_cached = matches[candidate.worker_id] / num_blocks >= threshold
            (cached if is_cached else uncached).append(candidate)
        if not cached or not uncached:
            return list(candidates)
        num_prompt_tokens = request.num_prompt_tokens

        def ttft_ms(endpoint: Endpoint) -> float:
            num_cached_tokens = matches[endpoint.worker_id] * endpoint.block_size_tokens
            return predict_ttft_ms(endpoint, max(0, num_prompt_tokens - num_cached_tokens))

        best_cached_ms = min(ttft_ms(c) for c in cached)
        best_uncached_ms = min(ttft_ms(c) for c in uncached)
        if best_cached_ms - best_uncached_ms > self._max_ttft_penalty_ms:
            return list(candidates)
        return cached


def create(
    name: str, parameters: Mapping[str, Any], context: PluginContext
) -> PrefixAffinityFilter:
    parsed = parse_parameters(PrefixAffinityParameters, name, parameters)
    return PrefixAffinityFilter(
        name, context.kv_index, parsed.threshold, parsed.max_ttft_penalty_ms
    )
