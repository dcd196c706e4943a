"""SGLang router's cache-aware policy, re-implemented as a picker for comparison.

Per pick, over the candidates' loads (this router's active request counts):

1. Imbalanced — `max − min > balanceAbsThreshold` AND `max > min · balanceRelThreshold`:
   the least-loaded candidate (first in candidate order on a tie, as SGLang scans
   its worker list) → "sglang:balance".
2. Otherwise match the prompt's token ids against each candidate's approximate
   radix tree (what this router sent it). If the best match ratio (matched tokens
   / prompt tokens) is above `cacheThreshold` (strictly, as SGLang compares), the
   best-matching candidate → "sglang:cache"; else the candidate with the smallest
   tree (most free cache) → "sglang:smallest-tree". Ties in either: at random,
   where SGLang takes whichever its hash map yields first.

After every pick, the prompt is inserted into the chosen worker's tree.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.producers.radix_tree import RadixTrees
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import (
    CycleState,
    Endpoint,
    SchedulingRequest,
    ScoredEndpoint,
)

TYPE_NAME = "sglang-cache-aware"
SUMMARY = "SGLang router's cache-aware policy: shortest queue when imbalanced, else radix match"


class SglangCacheAwareParameters(PluginParameters):
    cache_threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    balance_abs_threshold: Annotated[int, Field(ge=0)] = 32
    balance_rel_threshold: Annotated[float, Field(ge=1)] = 1.0001
    # Per worker; SGLang bounds its tree in characters, we bound tokens.
    max_tree_tokens: Annotated[int, Field(ge=1)] = 262_144


def is_imbalanced(loads: Sequence[int], abs_threshold: int, rel_threshold: float) -> bool:
    """SGLang's test: both the gap and the ratio between the busiest and idlest exceed."""
    high, low = max(loads), min(loads)
    return high - low > abs_threshold and high > low * rel_threshold


class SglangCacheAwarePicker:
    """Picker and PickObserver (see the module docstring)."""

    def __init__(
        self, name: str, parameters: SglangCacheAwareParameters, rng: random.Random
    ) -> None:
        self.name = name
        self.parameters = parameters
        self.trees = RadixTrees(parameters.max_tree_tokens)
        self._rng = rng

    def pick(
        self, request: SchedulingRequest, scored: Sequence[ScoredEndpoint], state: CycleState
    ) -> tuple[Endpoint, str]:
        endpoints = [s.endpoint for s in scored]
        loads = [e.active.num_requests for e in endpoints]
        parameters = self.parameters
        if is_imbalanced(loads, parameters.balance_abs_threshold, parameters.balance_rel_threshold):
            return endpoints[loads.index(min(loads))], "sglang:balance"
        worker_ids = [e.worker_id for e in endpoints]
        matched = self.trees.match_lengths(request.token_ids, worker_ids)
        best = max(matched)
        num_prompt_tokens = request.num_prompt_tokens
        ratio = best / num_prompt_tokens if num_prompt_tokens else 0.0
        if ratio > parameters.cache_threshold:
            return endpoints[self._any_index_of(matched, best)], "sglang:cache"
        sizes = [self.trees.num_tokens(w) for w in worker_ids]
        return endpoints[self._any_index_of(sizes, min(sizes))], "sglang:smallest-tree"

    def on_picked(self, request: SchedulingRequest, endpoint: Endpoint) -> None:
        self.trees.insert(endpoint.worker_id, request.token_ids)

    def _any_index_of(self, values: Sequence[int], wanted: int) -> int:
        tied = [i for i, v in enumerate(values) if v == wanted]
        return tied[0] if len(tied) == 1 else self._rng.choice(tied)


def create(
    name: str, parameters: Mapping[str, Any], context: PluginContext
) -> SglangCacheAwarePicker:
    return SglangCacheAwarePicker(
        name, parse_parameters(SglangCacheAwareParameters, name, parameters), context.rng
    )
