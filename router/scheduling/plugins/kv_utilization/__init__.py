"""kv-utilization-scorer: more free KV cache, higher score.

llm-d's KV-cache utilisation scorer: `score = 1 − kv_usage`, with `kv_usage` the
fraction of KV blocks in use from the worker's last load report. A worker near
full must evict (losing cached prefixes) or preempt to admit more work, so free
blocks predict both latency and cache retention. Absolute, not relative to the
other candidates: a cluster at 90% everywhere should not look as good as one at 10%.

`countUnreported` (off, as llm-d ships it): `kv_usage` also counts the KV blocks of
the requests this router sent the worker since its last report (which lags by up to
a report interval, 50 ms).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from triskel.router.scheduling.candidates import Candidates, Column, FloatColumn
from triskel.router.scheduling.plugin import PluginContext, ScoresFromColumns
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import CycleState, SchedulingRequest

TYPE_NAME = "kv-utilization-scorer"
SUMMARY = "Free share of the worker's KV cache: 1 − kv_usage."


class KvUtilizationParameters(PluginParameters):
    # Counts the KV blocks of requests sent since each worker's last load report as used.
    count_unreported: bool = False


class KvUtilizationScorer(ScoresFromColumns):
    """`1 − kv_usage` per candidate (the framework clamps reports outside [0, 1])."""

    def __init__(self, name: str, parameters: KvUtilizationParameters) -> None:
        self.name = name
        self._count_unreported = parameters.count_unreported

    def score_columns(
        self, request: SchedulingRequest, candidates: Candidates, state: CycleState
    ) -> FloatColumn:
        scores: FloatColumn = 1.0 - candidates.column(Column.KV_USAGE)
        if self._count_unreported:
            scores = scores - candidates.column(Column.UNREPORTED_KV_USAGE)
        return scores


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> KvUtilizationScorer:
    return KvUtilizationScorer(name, parse_parameters(KvUtilizationParameters, name, parameters))
