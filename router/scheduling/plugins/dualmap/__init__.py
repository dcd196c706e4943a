"""DualMap: two candidates per request from two hash rings, then cache hit vs. predicted TTFT.

From DualMap (Yuan et al., "DualMap: Enabling Both Cache Affinity and Load
Balancing for Distributed LLM Serving", ICLR 2026, arXiv:2602.06502). As a
filter, the prompt's leading block hash is looked up on two independently
seeded consistent-hash rings; the two owners are the request's only candidates
(the second ring's next distinct worker when both rings agree). As a picker,
the candidate holding the longer cached prefix wins unless its predicted TTFT
exceeds half the SLO; then the lower predicted TTFT wins.

One object is both the Filter and the Picker, so a profile lists it once. Hotspot
rebalancing of requests the router holds back is the pure `plan_rebalance`.
"""

from __future__ import annotations

from array import array
from collections.abc import Container, Mapping, Sequence
from typing import Annotated, Any

import xxhash
from pydantic import Field

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins.dualmap.rebalance import Move, QueuedRequest, plan_rebalance
from triskel.router.scheduling.producers.hash_ring import HashRing
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.producers.latency_predictor import predict_ttft_ms
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import (
    CycleState,
    Endpoint,
    SchedulingRequest,
    ScoredEndpoint,
)

__all__ = [
    "SUMMARY",
    "TYPE_NAME",
    "DualMap",
    "DualMapParameters",
    "Move",
    "QueuedRequest",
    "create",
    "plan_rebalance",
    "prefix_key",
]

TYPE_NAME = "dualmap"
SUMMARY = "DualMap: two hash-ring candidates per prefix; longer cache hit unless TTFT > SLO/2"

# Fixed seeds, not `context.rng`: every router replica must map a prefix to the same pair.
RING_SEEDS = (0xD0A1_0001, 0xD0A1_0002)


class DualMapParameters(PluginParameters):
    vnodes_per_worker: Annotated[int, Field(ge=1, le=10_000)] = 100
    num_prefix_blocks: Annotated[int, Field(ge=1)] = 1
    default_ttft_slo_ms: Annotated[float, Field(gt=0)] = 2000.0


def prefix_key(request: SchedulingRequest, num_prefix_blocks: int) -> int:
    """The ring key: the chained hash of the leading blocks (it covers all of them), or a
    hash of the token ids when the prompt is shorter than one block."""
    if request.block_hashes:
        return int(request.block_hashes[min(num_prefix_blocks, len(request.block_hashes)) - 1])
    return xxhash.xxh3_64_intdigest(array("I", request.token_ids).tobytes())


class DualMap:
    """Filter (two ring candidates) and Picker (cache hit vs. half-SLO TTFT) in one."""

    def __init__(self, name: str, parameters: DualMapParameters, kv_index: KvBlockIndex) -> None:
        self.name = name
        self.parameters = parameters
        self.rings = tuple(HashRing(parameters.vnodes_per_worker, seed) for seed in RING_SEEDS)
        self._kv_index = kv_index

    def candidate_ids(
        self, request: SchedulingRequest, eligible: Container[str] | None = None
    ) -> tuple[str | None, str | None]:
        """The first eligible worker clockwise on ring 1, and on ring 2 the first eligible
        one that differs from it (None where no eligible worker is left)."""
        first_ring, second_ring = self.rings
        key = prefix_key(request, self.parameters.num_prefix_blocks)
        first = next((w for w in first_ring.walk(key) if _allowed(w, eligible)), None)
        second = next(
            (w for w in second_ring.walk(key) if w != first and _allowed(w, eligible)), None
        )
        return first, second

    def filter(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[Endpoint]:
        if not candidates:
            return []
        candidate_ids = {c.worker_id for c in candidates}
        # Candidates not announced yet join the rings too, so every candidate can be picked.
        members = candidate_ids.union(request.ring_members)
        for ring in self.rings:
            ring.sync(members)  # no-op unless membership changed
        # A member that is down or excluded (a retry) hands its keys to the next one on
        # the ring for this pick only: the rings themselves stay put.
        keep = self.candidate_ids(request, candidate_ids)
        return [c for c in candidates if c.worker_id in keep]

    def pick(
        self, request: SchedulingRequest, scored: Sequence[ScoredEndpoint], state: CycleState
    ) -> tuple[Endpoint, str]:
        endpoints = [s.endpoint for s in scored]
        num_prompt_tokens = request.num_prompt_tokens
        matched_blocks = self._kv_index.match_lengths(
            request.block_hashes, [e.worker_id for e in endpoints]
        )
        cached_tokens = [
            min(num_prompt_tokens, m * e.block_size_tokens)
            for m, e in zip(matched_blocks, endpoints, strict=True)
        ]
        ttfts_ms = [
            predict_ttft_ms(e, num_prompt_tokens - c)
            for e, c in zip(endpoints, cached_tokens, strict=True)
        ]
        fastest = min(range(len(endpoints)), key=ttfts_ms.__getitem__)
        best_cached = max(cached_tokens)
        if best_cached == min(cached_tokens):
            return endpoints[fastest], "dualmap:tie"
        hit = cached_tokens.index(best_cached)
        slo_ms = request.ttft_slo_ms
        if slo_ms is None:
            slo_ms = self.parameters.default_ttft_slo_ms
        if ttfts_ms[hit] <= slo_ms / 2:
            return endpoints[hit], "dualmap:cache"
        return endpoints[fastest], "dualmap:ttft"


def _allowed(worker_id: str, eligible: Container[str] | None) -> bool:
    return eligible is None or worker_id in eligible


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> DualMap:
    return DualMap(name, parse_parameters(DualMapParameters, name, parameters), context.kv_index)
