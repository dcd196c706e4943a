"""round-robin-picker: takes each candidate in turn, by worker id, per (model, stage).

The router rebuilds the candidate list on every pick (workers come and go, filters
drop some), so a position in that list means nothing from one pick to the next.
The picker remembers the last worker id it chose instead and takes the next id
in sorted order, wrapping around:

    ids: a  b  c  d      last = b  → c
                         last = d  → a (wrap)
                         last = bb → c (bb left; the order carries on past it)

Finding "the smallest id above the last one" is one pass over the candidates,
no sort. Each (model, stage) has its own turn, so prefill picks do not skip
decode workers and vice versa.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import (
    CycleState,
    Endpoint,
    SchedulingRequest,
    ScoredEndpoint,
    Stage,
)

TYPE_NAME = "round-robin-picker"
SUMMARY = "Takes the candidates in turn, by worker id, ignoring scores."

REASON = "round-robin"


class RoundRobinParameters(PluginParameters):
    """No parameters."""


class RoundRobinPicker:
    """Picks the candidate whose id follows the last one picked for the same (model, stage)."""

    def __init__(self, name: str) -> None:
        self.name = name
        # One entry per (model, stage) ever seen: bounded by the deployment, not the traffic.
        self._last_id: dict[tuple[str, Stage], str] = {}

    def pick(
        self, request: SchedulingRequest, scored: Sequence[ScoredEndpoint], state: CycleState
    ) -> tuple[Endpoint, str]:
        key = (request.model, request.stage)
        last_id = self._last_id.get(key)
        chosen = _next_after(scored, last_id) if last_id is not None else None
        if chosen is None:
            # First pick, or the last id was the highest: start again from the lowest id.
            chosen = min(scored, key=_worker_id).endpoint
        self._last_id[key] = chosen.worker_id
        return chosen, REASON


def _worker_id(candidate: ScoredEndpoint) -> str:
    return candidate.endpoint.worker_id


def _next_after(scored: Sequence[ScoredEndpoint], last_id: str) -> Endpoint | None:
    """The candidate with the smallest worker id above `last_id`, None when there is none."""
    best: Endpoint | None = None
    for candidate in scored:
        worker_id = candidate.endpoint.worker_id
        if worker_id > last_id and (best is None or worker_id < best.worker_id):
            best = candidate.endpoint
    return best


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> RoundRobinPicker:
    parse_parameters(RoundRobinParameters, name, parameters)
    return RoundRobinPicker(name)
