"""The plain HPA law on queue length, with the Kubernetes defaults."""

from __future__ import annotations

from triskel.planner.laws.hpa_queue import HpaState, step
from triskel.planner.planner import Observation, StageObservation, StageSpec
from triskel.planner.sizing import Lengths

from .test_sizing import profile

DECODE = StageSpec("decode", "decode", profile(), min_replicas=1, max_replicas=20)
LENGTHS = Lengths.of([100])


def observe(time_s: float, replicas: int, queued: float) -> Observation:
    stage = StageObservation(replicas=replicas, queued=queued)
    return Observation(time_s, 0.0, LENGTHS, LENGTHS, {"decode": stage})


def test_desired_is_current_times_metric_over_target() -> None:
    # 2 replicas, 30 queued: 15 per replica against a target of 5 → ceil(2 × 3) = 6.
    _, (decision,) = step((DECODE,), 5.0, HpaState(), observe(0, 2, 30))
    assert decision.desired == 6


def test_within_tolerance_nothing_changes() -> None:
    # 4 replicas, 21 queued: 5.25 per replica, 5% over target: within the 10% tolerance.
    _, (decision,) = step((DECODE,), 5.0, HpaState(), observe(0, 4, 21))
    assert decision.desired == 4


def test_scale_up_is_limited_to_double_or_four_more() -> None:
    # 1 replica, 100 queued: ceil(1 × 20) = 20, but at most max(2 × 1, 1 + 4) = 5 at once.
    _, (decision,) = step((DECODE,), 5.0, HpaState(), observe(0, 1, 100))
    assert decision.desired == 5


def test_scale_down_takes_the_highest_recommendation_of_five_minutes() -> None:
    # 6 replicas: at t=0, 30 queued (5 each: stay 6); then the queue empties: raw 1, but
    # the highest recommendation of the last 300 s is 6 until t=0 leaves the window.
    state, (decision,) = step((DECODE,), 5.0, HpaState(), observe(0, 6, 30))
    assert decision.desired == 6
    state, (decision,) = step((DECODE,), 5.0, state, observe(150, 6, 0))
    assert decision.desired == 6
    state, (decision,) = step((DECODE,), 5.0, state, observe(301, 6, 0))
    assert decision.desired == 1
