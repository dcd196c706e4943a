"""queue-scorer: shorter waiting queue, higher score, relative to the other candidates.

llm-d's queue scorer: with q the worker's waiting requests (its last load report),

    score = (maxQ − q) / (maxQ − minQ)      over this pick's candidates

so the shortest queue scores 1 and the longest 0; when every queue has the same
length the queue says nothing and every candidate scores 1.

`countUnreported` (off, as llm-d ships it): q also counts the requests this router
sent the worker since its last report. Reports come every 50 ms: at 200 requests/s
ten picks read the same numbers, and without this all ten go to the queue that
looked shortest (docs/benchmarks.md, "Where the added TTFT at 200/s comes from").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from triskel.router.scheduling.candidates import Candidates, Column, FloatColumn
from triskel.router.scheduling.plugin import PluginContext, ScoresFromColumns
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import CycleState, SchedulingRequest

TYPE_NAME = "queue-scorer"
SUMMARY = "Shorter waiting queue scores higher, min-max scaled over the candidates."


class QueueScorerParameters(PluginParameters):
    # Counts the requests sent since each worker's last load report as waiting.
    count_unreported: bool = False


class QueueScorer(ScoresFromColumns):
    """`(maxQ − q)/(maxQ − minQ)` over the candidates' waiting queues (all equal → 1)."""

    def __init__(self, name: str, parameters: QueueScorerParameters) -> None:
        self.name = name
        self._count_unreported = parameters.count_unreported

    def score_columns(
        self, request: SchedulingRequest, candidates: Candidates, state: CycleState
    ) -> FloatColumn:
        queues = candidates.column(Column.WAITING)
        if self._count_unreported:
            queues = queues + candidates.column(Column.UNREPORTED_REQUESTS)
        if not len(queues):
            return queues
        max_queue = queues.max()
        spread = max_queue - queues.min()
        if spread == 0:
            return np.ones(len(queues))
        scores: FloatColumn = (max_queue - queues) / spread
        return scores


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> QueueScorer:
    return QueueScorer(name, parse_parameters(QueueScorerParameters, name, parameters))
