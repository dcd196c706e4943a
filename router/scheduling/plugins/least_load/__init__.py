"""least-load-scorer: the least loaded worker scores highest, over three load signals.

Each signal is scaled across this pick's candidates the way llm-d's queue scorer
scales the queue, `(max − x)/(max − min)` (least loaded 1, most loaded 0, all equal
1), and the three are averaged with the configured weights:

    score = (wq·queue + wr·running + wt·tokens) / (wq + wr + wt)

* queue   — requests waiting on the worker (its load report; only it knows);
* running — requests in progress: the larger of the worker's running count and
            the router's own count of requests sent and not finished (`ActiveLoad`),
            since the report lags by a stats period and misses the newest sends;
* tokens  — prompt tokens queued for prefill: the larger of the report's tokens in
            flight and the router's pending prefill tokens (as the latency
            predictor counts them).

Request counts say how many, tokens how much work: a worker running two 30k-token
prompts is busier than one running ten chat turns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.registry import (
    PluginConfigError,
    PluginParameters,
    parse_parameters,
)
from triskel.router.scheduling.types import CycleState, Endpoint, SchedulingRequest

TYPE_NAME = "least-load-scorer"
SUMMARY = "Least loaded scores highest: waiting queue, running requests, tokens in flight."

Weight = Annotated[float, Field(ge=0.0)]


class LeastLoadParameters(PluginParameters):
    queue_weight: Weight = 0.4
    running_weight: Weight = 0.3
    tokens_weight: Weight = 0.3


class LeastLoadScorer:
    """Weighted mean of the min-max scaled queue, running and token loads (see module doc)."""

    def __init__(self, name: str, parameters: LeastLoadParameters) -> None:
        self.name = name
        total = parameters.queue_weight + parameters.running_weight + parameters.tokens_weight
        # Normalised once so the weighted sum stays in [0, 1] whatever the weights add to.
        self._queue_weight = parameters.queue_weight / total
        self._running_weight = parameters.running_weight / total
        self._tokens_weight = parameters.tokens_weight / total

    def score(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[float]:
        waiting: list[int] = []
        running: list[int] = []
        tokens: list[int] = []
        # One pass with inline maxima: this runs over every candidate on every pick.
        for c in candidates:
            load, active = c.load, c.active
            waiting.append(load.num_waiting_requests)
            n, m = load.num_running_requests, active.num_requests
            running.append(n if n >= m else m)
            # The latency predictor's `queued_prefill_tokens`, inlined.
            n, m = load.num_tokens_in_flight, active.num_prefill_tokens
            tokens.append(n if n >= m else m)
        queue_scores = _least_is_best(waiting)
        running_scores = _least_is_best(running)
        tokens_scores = _least_is_best(tokens)
        wq, wr, wt = self._queue_weight, self._running_weight, self._tokens_weight
        return [
            wq * q + wr * r + wt * t
            for q, r, t in zip(queue_scores, running_scores, tokens_scores, strict=True)
        ]


def _least_is_best(loads: list[int]) -> list[float]:
    """`(max − x)/(max − min)` per load; all 1.0 when every load is the same."""
    if not loads:
        return []
    most = max(loads)
    spread = most - min(loads)
    if spread == 0:
        return [1.0] * len(loads)
    return [(most - load) / spread for load in loads]


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> LeastLoadScorer:
    parsed = parse_parameters(LeastLoadParameters, name, parameters)
    if parsed.queue_weight + parsed.running_weight + parsed.tokens_weight <= 0:
        raise PluginConfigError(
            f"plugin {name!r}: parameters.queueWeight, runningWeight and tokensWeight "
            "are all 0; at least one must be positive"
        )
    return LeastLoadScorer(name, parsed)
