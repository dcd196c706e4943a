"""AIBrix's KPA (v0.7.0 defaults), worked by hand: target 10 in flight per replica."""

from __future__ import annotations

from triskel.planner.laws.aibrix_kpa import KpaSettings, KpaState, step
from triskel.planner.planner import Observation, StageObservation, StageSpec
from triskel.planner.sizing import Lengths

from .test_sizing import profile

STAGE = StageSpec("decode", "decode", profile(), min_replicas=1, max_replicas=50)
SETTINGS = KpaSettings(target=10.0)
LENGTHS = Lengths.of([100])


def run(points: list[tuple[float, int, float]]) -> list[int]:
    state, desired = KpaState(), []
    for time_s, replicas, in_flight in points:
        stage = StageObservation(replicas=replicas, running=in_flight)
        observation = Observation(time_s, 0.0, LENGTHS, LENGTHS, {"decode": stage})
        state, (decision,) = step((STAGE,), SETTINGS, state, observation)
        desired.append(decision.desired)
    return desired


def test_steady_concurrency_within_tolerance_keeps_the_pool() -> None:
    # 2 replicas, 21 in flight every 10 s: 10.5 per replica, within 10 ± 10%.
    assert run([(10.0 * i, 2, 21.0) for i in range(20)])[-1] == 2


def test_the_stable_window_sizes_on_the_total() -> None:
    # 2 replicas, 40 in flight for 3 minutes: ceil(40 / 10) = 4 (at most 2 × 2 = 4).
    assert run([(10.0 * i, 2, 40.0) for i in range(19)])[-1] == 4


def test_a_burst_panics_and_the_panic_window_decides() -> None:
    # 3 minutes at 20 in flight on 2 replicas, then 90 for 30 s (t = 190 ... 220).
    # At t = 220 the 60 s panic window holds 20, 20, 20 (160, 170, 180) and 90 × 4:
    # mean 64.3; the 180 s stable window 14 × 20 + 4 × 90 over 18 samples: 35.6.
    # 64.3 / 35.6 > 2? No (1.8): stable mode, ceil(35.6 / 10) = 4, the most 2 × 2 allows.
    points = [(10.0 * i, 2, 20.0) for i in range(19)]
    points += [(190.0 + 10.0 * i, 2, 90.0) for i in range(4)]
    assert run(points)[-1] == 4
    # A young pool: both windows hold the same three samples (0, 0, 50): mean 16.7,
    # ceil(16.7 / 10) = 2, as much as doubling allows.
    assert run([(0.0, 1, 0.0), (10.0, 1, 0.0), (20.0, 1, 50.0)])[-1] == 2


def test_scale_down_takes_the_lowest_recommendation_of_five_minutes() -> None:
    # 4 replicas, load falls from 40 to 10 in flight: the stable mean falls slowly, and
    # each recommendation is at least half the pool (floor(4 / 2) = 2). Scale-down
    # takes the lowest recommendation of the last 300 s, so it goes as soon as one is
    # lower (AIBrix's cooldown is aggressive, unlike the HPA's highest-of-window).
    points = [(10.0 * i, 4, 40.0) for i in range(18)]
    points += [(180.0 + 10.0 * i, 4, 10.0) for i in range(18)]
    desired = run(points)
    assert desired[17] == 4
    assert min(desired[18:]) == 2 and desired[-1] == 2
