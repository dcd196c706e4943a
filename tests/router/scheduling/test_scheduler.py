"""The framework: filters, clamped and weighted scores, one picker, observers, timing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from triskel.router.scheduling.candidates import Candidates, FloatColumn
from triskel.router.scheduling.scheduler import Profile, Scheduler
from triskel.router.scheduling.types import (
    CycleState,
    Endpoint,
    NoEndpointError,
    SchedulingRequest,
    ScoredEndpoint,
    Stage,
)


def endpoints(*ids: str) -> list[Endpoint]:
    return [Endpoint(worker_id=i, model="m", block_size_tokens=16) for i in ids]


REQUEST = SchedulingRequest("r", "m", Stage.PREFILL, [1, 2, 3], [], max_tokens=4)


@dataclass
class KeepFilter:
    name: str
    keep: set[str]

    def filter(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[Endpoint]:
        return [c for c in candidates if c.worker_id in self.keep]


@dataclass
class FixedScorer:
    name: str
    scores: dict[str, float]

    def score(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[float]:
        return [self.scores[c.worker_id] for c in candidates]


@dataclass
class RecordingPicker:
    name: str = "picker"
    seen: list[tuple[str, float]] = field(default_factory=list)
    picked: list[str] = field(default_factory=list)

    def pick(
        self, request: SchedulingRequest, scored: Sequence[ScoredEndpoint], state: CycleState
    ) -> tuple[Endpoint, str]:
        self.seen = [(s.endpoint.worker_id, s.score) for s in scored]
        best = max(scored, key=lambda s: s.score)
        return best.endpoint, "best"

    def on_picked(self, request: SchedulingRequest, endpoint: Endpoint) -> None:
        self.picked.append(endpoint.worker_id)


def test_scores_are_clamped_weighted_and_summed_before_the_picker() -> None:
    picker = RecordingPicker()
    profile = Profile(
        "prefill",
        (KeepFilter("keep", {"a", "b"}),),
        (
            (FixedScorer("s1", {"a": 0.5, "b": 2.0, "c": 1.0}), 3.0),
            (FixedScorer("s2", {"a": -1.0, "b": 0.25, "c": 1.0}), 2.0),
        ),
        picker,
    )
    decision = Scheduler({Stage.PREFILL: profile}, None).schedule(REQUEST, endpoints("a", "b", "c"))
    # a: 3·0.5 + 2·clamp(−1)=0 → 1.5;  b: 3·clamp(2)=3 + 2·0.25 → 3.5;  c filtered out.
    assert picker.seen == [("a", 1.5), ("b", 3.5)]
    assert decision.endpoint.worker_id == "b" and decision.reason == "best"
    assert decision.scores == {"a": 1.5, "b": 3.5}
    assert set(decision.plugin_seconds) == {"keep", "s1", "s2", "picker"}
    # The picker is also an observer: it learns of its own pick.
    assert picker.picked == ["b"]


def test_observers_learn_what_is_sent_not_what_is_only_chosen() -> None:
    picker = RecordingPicker()
    scheduler = Scheduler({Stage.PREFILL: Profile("prefill", (), (), picker)}, None)
    # Adaptive disaggregation chooses a prefill worker it may not use: nothing learnt.
    decision = scheduler.choose(REQUEST, endpoints("a"))
    assert picker.picked == []
    # Once the worker is sent the request, the observers learn it (here: another one,
    # as when a held prefill moves to its runner-up).
    scheduler.sent(REQUEST, endpoints("b")[0])
    assert decision.endpoint.worker_id == "a" and picker.picked == ["b"]


def test_a_stage_without_a_profile_uses_the_default() -> None:
    default = Profile("default", (), (), RecordingPicker())
    decision = Scheduler({}, default).schedule(REQUEST, endpoints("a"))
    assert decision.profile == "default"


@pytest.mark.parametrize(
    ("candidates", "keep", "fragment"),
    [
        ([], {"a"}, "no prefill workers for model m"),
        (endpoints("a"), set(), "passed filter 'keep'"),
    ],
)
def test_no_candidate_left_is_an_error_naming_why(
    candidates: list[Endpoint], keep: set[str], fragment: str
) -> None:
    profile = Profile("prefill", (KeepFilter("keep", keep),), (), RecordingPicker())
    with pytest.raises(NoEndpointError, match=fragment):
        Scheduler({Stage.PREFILL: profile}, None).schedule(REQUEST, candidates)


def test_no_profile_and_no_default_is_an_error() -> None:
    with pytest.raises(NoEndpointError, match="no scheduling profile for stage decode"):
        Scheduler({}, None).profile_for(Stage.DECODE)


@dataclass
class FixedColumnScorer(FixedScorer):
    """The same scores, also in column form: the scheduler must take the column."""

    column_calls: int = 0

    def score_columns(
        self, request: SchedulingRequest, candidates: Candidates, state: CycleState
    ) -> FloatColumn:
        self.column_calls += 1
        return np.array([self.scores[c.worker_id] for c in candidates])


@dataclass
class LastRowPicker:
    name: str = "last-row"

    def pick(
        self, request: SchedulingRequest, scored: Sequence[ScoredEndpoint], state: CycleState
    ) -> tuple[Endpoint, str]:
        raise AssertionError("the row form must be used")

    def pick_row(
        self,
        request: SchedulingRequest,
        candidates: Candidates,
        totals: FloatColumn,
        state: CycleState,
    ) -> tuple[int, str]:
        return len(candidates) - 1, f"total {totals[-1]}"


def test_column_and_list_scorers_add_up_alike() -> None:
    # Awkward floats: the column sum must be the list sum to the last bit.
    values = {"a": 0.1, "b": 0.7, "c": 1.0 / 3.0}
    column = FixedColumnScorer("col", values)
    profile = Profile("prefill", (), ((column, 0.3), (FixedScorer("list", values), 0.7)), MaxPick())
    decision = Scheduler({Stage.PREFILL: profile}, None).choose(REQUEST, endpoints("a", "b", "c"))
    assert column.column_calls == 1
    expected = {w: 0.0 + 0.3 * v + 0.7 * v for w, v in values.items()}
    assert decision.scores == expected  # exact, not approximate
    row_profile = Profile("prefill", (), ((column, 1.0),), LastRowPicker())
    decision = Scheduler({Stage.PREFILL: row_profile}, None).choose(REQUEST, endpoints("a", "c"))
    assert decision.endpoint.worker_id == "c" and decision.reason == f"total {values['c']}"


@dataclass
class MaxPick:
    name: str = "max"

    def pick(
        self, request: SchedulingRequest, scored: Sequence[ScoredEndpoint], state: CycleState
    ) -> tuple[Endpoint, str]:
        return max(scored, key=lambda s: s.score).endpoint, "max"
