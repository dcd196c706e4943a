"""Runs a stage's profile: filters → weighted scorers → picker, timing every plugin.

candidates ─► filter ─► filter ─► [scorer × weight, clamped to [0, 1]] ─Σ─► picker ─► decision

Scores and totals are numpy columns aligned with the candidates (`Candidates`):
scorers with a column form (`ColumnScorer`) return one, the others' lists are
converted; the sum is the same arithmetic, in the same order, as a Python loop's.

`choose` stops there; `sent` then records the prompt in the routing history and tells
the profile's observers (plugins that learn from picks) once the request is really sent
to the worker, so a pick only compared (adaptive disaggregation's prefill pick when the
request stays local) teaches them nothing.
`schedule` is both, for a caller that always sends what it picks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from triskel.router.scheduling.candidates import Candidates, FloatColumn, ScoredCandidates
from triskel.router.scheduling.plugin import (
    ColumnPicker,
    ColumnScorer,
    Filter,
    Picker,
    PickObserver,
    Scorer,
)
from triskel.router.scheduling.producers.routing_history import RoutingHistory
from triskel.router.scheduling.score_sum import clamped_sum
from triskel.router.scheduling.types import (
    CycleState,
    Decision,
    Endpoint,
    NoEndpointError,
    SchedulingRequest,
    Stage,
)


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    filters: tuple[Filter, ...]
    scorers: tuple[tuple[Scorer, float], ...]
    picker: Picker
    # Found once: isinstance against a runtime Protocol is slow, and picks are hot.
    observers: tuple[PickObserver, ...] = field(init=False)
    # Per scorer, itself when it has a column form (else None); the picker likewise.
    column_scorers: tuple[ColumnScorer | None, ...] = field(init=False)
    row_picker: ColumnPicker | None = field(init=False)
    # The scorers and their weights apart, as every pick reads them.
    scorer_plugins: tuple[Scorer, ...] = field(init=False)
    weights: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        plugins = (*self.filters, *(s for s, _ in self.scorers), self.picker)
        unique = {id(p): p for p in plugins if isinstance(p, PickObserver)}
        object.__setattr__(self, "observers", tuple(unique.values()))
        columns = tuple(s if isinstance(s, ColumnScorer) else None for s, _ in self.scorers)
        object.__setattr__(self, "column_scorers", columns)
        picker = self.picker if isinstance(self.picker, ColumnPicker) else None
        object.__setattr__(self, "row_picker", picker)
        object.__setattr__(self, "scorer_plugins", tuple(s for s, _ in self.scorers))
        object.__setattr__(self, "weights", tuple(float(w) for _, w in self.scorers))


class Scheduler:
    """Picks one endpoint per stage. Pure: the same object runs in router and simulator."""

    def __init__(
        self,
        profiles: Mapping[Stage, Profile],
        default: Profile | None,
        timer: Callable[[], float] = time.perf_counter,
        history: RoutingHistory | None = None,
    ) -> None:
        self._profiles = dict(profiles)
        self._default = default
        self._timer = timer
        self._history = history

    def profile_for(self, stage: Stage) -> Profile:
        profile = self._profiles.get(stage, self._default)
        if profile is None:
            raise NoEndpointError(f"no scheduling profile for stage {stage} and no default")
        return profile

    def schedule(self, request: SchedulingRequest, candidates: Sequence[Endpoint]) -> Decision:
        """`choose`, then `sent` to the chosen worker."""
        decision = self.choose(request, candidates)
        self.sent(request, decision.endpoint)
        return decision

    def sent(self, request: SchedulingRequest, endpoint: Endpoint) -> None:
        """Records that `request` went to `endpoint` in the routing history (the one
        place it is written) and tells the stage's observers."""
        if self._history is not None and request.block_hashes:
            self._history.record(endpoint.worker_id, request.block_hashes)
        for observer in self.profile_for(request.stage).observers:
            observer.on_picked(request, endpoint)

    def choose(self, request: SchedulingRequest, candidates: Sequence[Endpoint]) -> Decision:
        """Picks one of `candidates` (NoEndpointError when none, or none passes a filter).

        `candidates` may be a `Candidates` kept by the caller: its columns are then
        built once for as long as it is kept, not on every pick."""
        profile = self.profile_for(request.stage)
        timer = self._timer
        seconds: dict[str, float] = {}
        state = CycleState()
        if not candidates:
            raise NoEndpointError(f"no {request.stage} workers for model {request.model}")
        remaining = Candidates.of(candidates)
        for plugin in profile.filters:
            started = timer()
            kept = plugin.filter(request, remaining, state)
            seconds[plugin.name] = timer() - started
            if not kept:
                raise NoEndpointError(
                    f"no {request.stage} worker for model {request.model} passed filter "
                    f"{plugin.name!r}"
                )
            if len(kept) != len(remaining):  # filters keep order: same length, same rows
                remaining = Candidates(kept)
        columns: list[FloatColumn] = []
        for scorer, column_scorer in zip(
            profile.scorer_plugins, profile.column_scorers, strict=True
        ):
            started = timer()
            if column_scorer is not None:
                columns.append(column_scorer.score_columns(request, remaining, state))
            else:
                columns.append(_column(scorer.score(request, remaining, state), len(remaining)))
            seconds[scorer.name] = timer() - started
        # Clamped, weighed, added: a Python loop's arithmetic, value for value.
        totals = clamped_sum(columns, profile.weights, len(remaining))
        scored = ScoredCandidates(remaining, totals)
        picker = profile.picker
        started = timer()
        if profile.row_picker is not None:
            row, reason = profile.row_picker.pick_row(request, remaining, totals, state)
            endpoint = remaining[row]
        else:
            endpoint, reason = picker.pick(request, scored, state)
        seconds[picker.name] = seconds.get(picker.name, 0.0) + timer() - started
        return Decision(endpoint, profile.name, reason, seconds, scored)


def _column(scores: Sequence[float], num_candidates: int) -> FloatColumn:
    """A list scorer's scores as a column (one per candidate, or ValueError)."""
    if len(scores) != num_candidates:
        raise ValueError(f"a scorer gave {len(scores)} scores for {num_candidates} candidates")
    return np.fromiter(scores, np.float64, num_candidates)
