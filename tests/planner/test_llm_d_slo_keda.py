"""llm-d's SLO-aware KEDA law with the guide's HPA behaviour, worked by hand."""

from __future__ import annotations

from triskel.planner.laws.llm_d_slo_keda import LlmdSettings, LlmdState, step
from triskel.planner.planner import Observation, StageObservation, StageSpec
from triskel.planner.sizing import Lengths

from .test_sizing import profile

PREFILL = StageSpec("prefill", "prefill", profile(), min_replicas=1, max_replicas=20)
SETTINGS = LlmdSettings()  # TTFT 3 s, TPOT 100 ms
LENGTHS = Lengths.of([100])


def observe(time_s: float, replicas: int, ttft_ms: float | None) -> Observation:
    stage = StageObservation(replicas=replicas, ttft_ms=ttft_ms)
    return Observation(time_s, 1.0, LENGTHS, LENGTHS, {"prefill": stage})


def run(points: list[tuple[float, int, float | None]]) -> list[int]:
    state, desired = LlmdState(), []
    for time_s, replicas, ttft in points:
        state, (decision,) = step((PREFILL,), SETTINGS, state, observe(time_s, replicas, ttft))
        desired.append(decision.desired)
    return desired


def test_the_dead_band_holds() -> None:
    # TTFT 1.5 s of 3 s: s = 0.5, between 0.40 and 0.55.
    assert run([(0.0, 4, 1500.0)]) == [4]


def test_over_the_slo_scales_in_proportion() -> None:
    # TTFT 3.3 s: s = 1.1; d = 2 + ceil(2 × (1.1 / 0.55 − 1)) = 4; the HPA allows up to
    # max(2 + 4, 2 × 2) = 6 in 60 s: 4.
    assert run([(0.0, 2, 3300.0)]) == [4]
    # s is clamped at 2.0 before smoothing: TTFT 30 s gives d = 2 + ceil(2 × 2.64) = 8,
    # limited to 6 in the first minute.
    assert run([(0.0, 2, 30_000.0)]) == [6]


def test_the_signal_is_smoothed_over_45_seconds_and_scale_up_over_30() -> None:
    # 30 s of 1.5 s TTFT (s = 0.5), then one sample of 3.3 s (1.1): the mean of (0.5, 0.5,
    # 0.5, 1.1) at 0, 15, 30, 44 s is 0.65 > 0.55, and the law says
    # d = 4 + ceil(4 × (0.65 / 0.55 − 1)) = 5 (25% more: outside the tolerance). The HPA
    # takes the lowest recommendation of the last 30 s (4 at 15 and 30 s): still 4.
    state = LlmdState()
    for time_s, ttft in ((0.0, 1500.0), (15.0, 1500.0), (30.0, 1500.0), (44.0, 3300.0)):
        state, (decision,) = step((PREFILL,), SETTINGS, state, observe(time_s, 4, ttft))
    assert decision.numbers["law_desired"] == 5
    assert decision.desired == 4
    # 30 s of 5s later (t = 59 and 74, the signal still high), the pool grows.
    for time_s in (59.0, 74.0):
        state, (decision,) = step((PREFILL,), SETTINGS, state, observe(time_s, 4, 3300.0))
    assert decision.desired > 4


def test_scale_down_waits_three_minutes_then_one_pod_per_two_minutes() -> None:
    # 4 replicas at TTFT 1.5 s (s = 0.5, the dead band: 4), then idle. The smoothed
    # signal falls: 0.25 at t = 15 (4 − floor(4 × 0.375) = 3), 0.17 at t = 30 (2), then 0
    # (kept at the minimum). The HPA keeps the highest recommendation of the last 180 s:
    # 4 until t = 0 leaves the window; at t = 181 the highest is 3, and the pool loses
    # one pod; then one pod per 120 s: 3 at t = 196, 2 at t = 302.
    points: list[tuple[float, int, float | None]] = [(0.0, 4, 1500.0)]
    points += [(15.0 * i, 4, None) for i in range(1, 12)]  # up to t = 165
    points += [(181.0, 4, None), (196.0, 3, None), (302.0, 3, None)]
    desired = run(points)
    assert desired[:12] == [4] * 12
    assert desired[-3:] == [3, 3, 2]
