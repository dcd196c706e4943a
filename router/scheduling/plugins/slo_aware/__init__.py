"""slo-aware-scorer: how much of the request's latency budget each worker would leave.

For each candidate the latency predictor (DistServe's latency model: prefill
`a + b·L + c·L²` over the work queued ahead plus this prompt, decode
`a + b·context + c·batch`; Zhong et al., OSDI 2024) gives the request's TTFT and
TPOT on that worker, and the score is the share of the SLO left over:

    s_ttft = max(0, 1 − predicted_ttft_ms / ttft_slo_ms)
    s_tpot = max(0, 1 − predicted_tpot_ms / tpot_slo_ms)

    prefill: s_ttft     decode: s_tpot     unified: min(s_ttft, s_tpot)     encode: 1

A faster worker scores higher; a worker predicted to miss the SLO scores 0 (in
unified, missing either one does, as DistServe's goodput counts a request only
when it meets both). An encode pick has neither SLO, so no worker is preferred.

TTFT counts only the prompt the worker must compute: prompt tokens minus the
longest prefix it caches (from the router's KV index, shared with the
precise-prefix scorer through the cycle state). DualMap (the seed paper) predicts
TTFT the same way, from queued plus uncached tokens, to choose between candidates.
TPOT is predicted at the request's mean context over its output (prompt plus half
of `max_tokens`). SLOs come from the request, else from the parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins.precise_prefix import matched_blocks
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.producers.latency_predictor import (
    predict_tpot_ms,
    predict_ttft_ms,
)
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import CycleState, Endpoint, SchedulingRequest, Stage

TYPE_NAME = "slo-aware-scorer"
SUMMARY = "Share of the TTFT / TPOT SLO each worker would leave, from predicted latency."


class SloAwareParameters(PluginParameters):
    # Used when the request carries no SLO of its own.
    default_ttft_slo_ms: Annotated[float, Field(gt=0)] = 1000.0
    default_tpot_slo_ms: Annotated[float, Field(gt=0)] = 100.0


class SloAwareScorer:
    """Scores `1 − predicted / SLO`, floored at 0, for the SLOs of the request's stage."""

    def __init__(self, name: str, parameters: SloAwareParameters, kv_index: KvBlockIndex) -> None:
        self.name = name
        self._default_ttft_slo_ms = parameters.default_ttft_slo_ms
        self._default_tpot_slo_ms = parameters.default_tpot_slo_ms
        self._kv_index = kv_index

    def score(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[float]:
        stage = request.stage
        if stage == Stage.PREFILL:
            return self._ttft_scores(request, candidates, state)
        if stage == Stage.DECODE:
            return self._tpot_scores(request, candidates)
        if stage == Stage.UNIFIED:
            ttft = self._ttft_scores(request, candidates, state)
            tpot = self._tpot_scores(request, candidates)
            return [a if a < b else b for a, b in zip(ttft, tpot, strict=True)]
        return [1.0] * len(candidates)

    def _ttft_scores(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[float]:
        slo_ms = request.ttft_slo_ms
        if slo_ms is None:
            slo_ms = self._default_ttft_slo_ms
        num_prompt_tokens = request.num_prompt_tokens
        if not request.block_hashes:
            # No full block, so nothing can be cached: skip the index lookup.
            predicted_ms = [predict_ttft_ms(c, num_prompt_tokens) for c in candidates]
            return _shares_left(predicted_ms, slo_ms)
        matches = matched_blocks(self._kv_index, request, candidates, state)
        # Negative only if the worker's block size disagrees with the hashes' (then 0).
        uncached = [
            num_prompt_tokens - matches[c.worker_id] * c.block_size_tokens for c in candidates
        ]
        predicted_ms = [
            predict_ttft_ms(c, n if n > 0 else 0) for c, n in zip(candidates, uncached, strict=True)
        ]
        return _shares_left(predicted_ms, slo_ms)

    def _tpot_scores(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint]
    ) -> list[float]:
        slo_ms = request.tpot_slo_ms
        if slo_ms is None:
            slo_ms = self._default_tpot_slo_ms
        # Context grows from the prompt to prompt + max_tokens while decoding: take the mean.
        num_context_tokens = request.num_prompt_tokens + request.max_tokens // 2
        predicted_ms = [predict_tpot_ms(c, num_context_tokens) for c in candidates]
        return _shares_left(predicted_ms, slo_ms)


def _shares_left(predicted_ms: list[float], slo_ms: float) -> list[float]:
    """The share of `slo_ms` left after each prediction, 0 where the SLO would be missed."""
    if slo_ms <= 0:
        # A request asking for a zero (or negative) budget: every worker misses it.
        return [0.0] * len(predicted_ms)
    left = [1.0 - p / slo_ms for p in predicted_ms]
    return [x if x > 0.0 else 0.0 for x in left]


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> SloAwareScorer:
    parsed = parse_parameters(SloAwareParameters, name, parameters)
    return SloAwareScorer(name, parsed, context.kv_index)
