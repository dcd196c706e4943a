"""The Knative-style KPA law: stable and panic windows, worked by hand."""

from __future__ import annotations

from triskel.planner.laws.kpa import KpaSettings, KpaState, step
from triskel.planner.planner import Observation, StageObservation, StageSpec
from triskel.planner.sizing import Lengths

from .test_sizing import profile

STAGE = StageSpec("decode", "decode", profile(), min_replicas=1, max_replicas=50)
SETTINGS = KpaSettings(target=10.0)  # 60 s stable window, 6 s panic window, 200%
LENGTHS = Lengths.of([100])


def observe(time_s: float, replicas: int, in_flight: float) -> Observation:
    stage = StageObservation(replicas=replicas, running=in_flight)
    return Observation(time_s, 0.0, LENGTHS, LENGTHS, {"decode": stage})


def run(points: list[tuple[float, int, float]]) -> list[int]:
    state, desired = KpaState(), []
    for time_s, replicas, in_flight in points:
        state, (decision,) = step((STAGE,), SETTINGS, state, observe(time_s, replicas, in_flight))
        desired.append(decision.desired)
    return desired


def test_stable_mode_follows_the_windows_mean() -> None:
    # 2 replicas, 20 in flight every 2 s for a minute: ceil(20 / 10) = 2.
    assert run([(2.0 * i, 2, 20.0) for i in range(30)])[-1] == 2


def test_a_burst_enters_panic_and_scales_on_the_short_window() -> None:
    # A minute at 20 in flight (2 replicas), then 80 for two samples. At the first, the
    # 6 s panic window holds 20, 20, 80 (t = 56, 58, 60): mean 40, ceil(40/10) = 4,
    # 4 / 2 ready = 200% → panic, desired 4 (the stable mean, 21, would say 3).
    # At the second, the panic window holds 20, 80, 80: mean 60 → 6.
    points = [(2.0 * i, 2, 20.0) for i in range(30)] + [(60.0, 2, 80.0), (62.0, 2, 80.0)]
    assert run(points)[-2:] == [4, 6]


def test_panic_mode_does_not_scale_down_until_a_stable_window_passes() -> None:
    # After the burst the load drops to 10 in flight on 6 replicas: panic holds 6 until
    # 60 s after the last panic signal, then the stable mean decides — limited to
    # halving per step (max_scale_down_rate 2): 6 → 3.
    points = [(2.0 * i, 2, 20.0) for i in range(30)] + [(60.0, 2, 80.0), (62.0, 2, 80.0)]
    points += [(64.0 + 2.0 * i, 6, 10.0) for i in range(29)]  # up to t = 120
    desired = run(points)
    assert desired[-1] == 6  # t = 120: the last panic signal (t = 62) is 58 s old
    state_points = [*points, (124.0, 6, 10.0)]
    assert run(state_points)[-1] == 3
