"""The plugin kinds and what a plugin may use.

A profile runs `filters → scorers → picker`; plugins that also observe picks
(to learn from the router's own decisions) implement `PickObserver`. Plugins are
pure: no I/O, no wall clock (they read time from the context's `clock`), so the
simulator drives them unchanged.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from triskel.router.scheduling.candidates import Candidates, FloatColumn
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.producers.routing_history import RoutingHistory
from triskel.router.scheduling.types import (
    CycleState,
    Endpoint,
    SchedulingRequest,
    ScoredEndpoint,
)


@runtime_checkable
class Filter(Protocol):
    """Keeps the candidates fit for the request, in order. May return an empty list."""

    name: str

    def filter(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[Endpoint]: ...


@runtime_checkable
class Scorer(Protocol):
    """One score per candidate, same order, meant to lie in [0, 1] (1 = best).

    The framework clamps to [0, 1] and multiplies by the profile's weight, so a
    scorer never needs to know about the others.
    """

    name: str

    def score(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> Sequence[float]: ...


@runtime_checkable
class ColumnScorer(Scorer, Protocol):
    """A scorer with a column form: the same scores as `score`, as one numpy column.

    The scheduler calls `score_columns` when a scorer has it, so a pick over many
    candidates costs numpy calls rather than a Python loop per candidate. `score`
    stays for callers with a plain list, and must give the same numbers (the one
    formula, written once: `score` converts the column).
    """

    def score_columns(
        self, request: SchedulingRequest, candidates: Candidates, state: CycleState
    ) -> FloatColumn: ...


class ScoresFromColumns(abc.ABC):
    """Base of a column scorer: `score`, for callers with a plain list, is its
    `score_columns` converted, so the formula is written once."""

    def score(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[float]:
        scores: list[float] = self.score_columns(request, Candidates.of(candidates), state).tolist()
        return scores

    @abc.abstractmethod
    def score_columns(
        self, request: SchedulingRequest, candidates: Candidates, state: CycleState
    ) -> FloatColumn: ...


@runtime_checkable
class Picker(Protocol):
    """Chooses one of the scored candidates (never an empty list).

    Returns the endpoint and a short reason label for metrics.
    """

    name: str

    def pick(
        self, request: SchedulingRequest, scored: Sequence[ScoredEndpoint], state: CycleState
    ) -> tuple[Endpoint, str]: ...


@runtime_checkable
class ColumnPicker(Picker, Protocol):
    """A picker with a column form: chooses a row of `totals` (the weighted sums,
    aligned with `candidates`); the same choice as `pick` given the same draws."""

    def pick_row(
        self,
        request: SchedulingRequest,
        candidates: Candidates,
        totals: FloatColumn,
        state: CycleState,
    ) -> tuple[int, str]: ...


@runtime_checkable
class PickObserver(Protocol):
    """Learns from picks: called after the profile chose `endpoint` for `request`."""

    name: str

    def on_picked(self, request: SchedulingRequest, endpoint: Endpoint) -> None: ...


Plugin = Filter | Scorer | Picker


@dataclass(slots=True)
class PluginContext:
    """Shared data producers and sources of time and randomness, given to every factory.

    One context per router (or simulation); never a global.
    """

    # Which worker holds which KV block, from the workers' KV events.
    kv_index: KvBlockIndex = field(default_factory=KvBlockIndex)
    # Monotonic seconds; the simulator passes its virtual clock.
    clock: Callable[[], float] = field(default=lambda: 0.0)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    # What this router sent each worker: the one routing history, written by
    # `Scheduler.sent` (see producers/routing_history.py), read by prefix scorers.
    history: RoutingHistory = field(init=False)

    def __post_init__(self) -> None:
        self.history = RoutingHistory(self.clock)
