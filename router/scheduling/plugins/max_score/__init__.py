"""max-score-picker: the candidate with the highest weighted total; ties at random.

llm-d's default picker. Breaking ties at random matters: when scores tie (an idle
cluster, or every worker missing the prefix), always taking the first candidate
would send a burst of identical requests to one worker — the failure the anchors
note in the cache-aware Rust routers. Draws come from the context's seeded `rng`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from triskel.router.scheduling.candidates import Candidates, FloatColumn
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import CycleState, Endpoint, SchedulingRequest, ScoredEndpoint

TYPE_NAME = "max-score-picker"
SUMMARY = "Picks the highest total score, breaking ties at random."

REASON = "max-score"


class MaxScoreParameters(PluginParameters):
    """No parameters."""


class MaxScorePicker:
    """Highest `score`; among equal highest scores, uniformly at random."""

    def __init__(self, name: str, rng: random.Random) -> None:
        self.name = name
        self._rng = rng

    def pick(
        self, request: SchedulingRequest, scored: Sequence[ScoredEndpoint], state: CycleState
    ) -> tuple[Endpoint, str]:
        totals = np.fromiter((c.score for c in scored), np.float64, len(scored))
        return scored[self._best_row(totals)].endpoint, REASON

    def pick_row(
        self,
        request: SchedulingRequest,
        candidates: Candidates,
        totals: FloatColumn,
        state: CycleState,
    ) -> tuple[int, str]:
        return self._best_row(totals), REASON

    def _best_row(self, totals: FloatColumn) -> int:
        # Exact equality on purpose: totals are sums of the same weights times the same
        # clamped values, so genuinely equal candidates compare equal.
        best: list[int] = (totals == totals.max()).nonzero()[0].tolist()
        return best[0] if len(best) == 1 else self._rng.choice(best)


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> MaxScorePicker:
    parse_parameters(MaxScoreParameters, name, parameters)
    return MaxScorePicker(name, context.rng)
