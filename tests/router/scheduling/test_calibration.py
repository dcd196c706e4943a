"""Per-worker observed ÷ predicted latencies, and the watch that feeds them."""

from __future__ import annotations

import pytest

from triskel.router.scheduling.calibration import Calibration, Kind
from triskel.router.scheduling.latency_watch import LatencyWatch
from triskel.router.scheduling.placement import Expected


def test_a_worker_starts_at_its_profile() -> None:
    assert Calibration().factor("w", Kind.TTFT) == 1.0


def test_one_observation_moves_a_fifth_of_the_way() -> None:
    calibration = Calibration()
    calibration.observe("w", Kind.TTFT, 100.0, 200.0)  # ratio 2: 1 + 0.2 x (2 - 1)
    assert calibration.factor("w", Kind.TTFT) == pytest.approx(1.2)
    assert calibration.factor("w", Kind.TPOT) == 1.0  # kinds apart
    assert calibration.factor("other", Kind.TTFT) == 1.0  # workers apart


def test_an_outlier_is_bounded() -> None:
    calibration = Calibration()
    calibration.observe("w", Kind.TPOT, 1.0, 1000.0)  # ratio 1,000 counted as 4
    assert calibration.factor("w", Kind.TPOT) == pytest.approx(1.6)
    calibration.observe("v", Kind.TPOT, 1000.0, 0.0)  # ratio 0 counted as 0.25
    assert calibration.factor("v", Kind.TPOT) == pytest.approx(0.85)


def test_a_zero_prediction_says_nothing() -> None:
    calibration = Calibration()
    calibration.observe("w", Kind.TTFT, 0.0, 50.0)
    assert calibration.factor("w", Kind.TTFT) == 1.0


class Clock:
    def __init__(self) -> None:
        self.now_s = 10.0

    def __call__(self) -> float:
        return self.now_s


def test_the_watch_times_the_first_token_and_the_answer() -> None:
    clock, calibration = Clock(), Calibration()
    expected = Expected("p", ttft_ms=100.0, decode_worker_id="d", tpot_ms=10.0)
    watch = LatencyWatch(calibration, expected, clock)
    clock.now_s += 0.3  # TTFT 300 ms: 3x the expected
    watch.first_token()
    clock.now_s += 0.1
    watch.first_token()  # a later token: not a first one
    clock.now_s += 0.1
    watch.finished(11)  # 10 intervals in 200 ms: TPOT 20 ms, 2x
    assert calibration.factor("p", Kind.TTFT) == pytest.approx(1.4)
    assert calibration.factor("d", Kind.TPOT) == pytest.approx(1.2)


def test_a_one_token_answer_has_no_tpot() -> None:
    clock, calibration = Clock(), Calibration()
    watch = LatencyWatch(calibration, Expected("p", 100.0, "d", 10.0), clock)
    watch.finished(5)  # no first token seen: nothing to time from
    watch.first_token()
    watch.finished(1)
    assert calibration.factor("d", Kind.TPOT) == 1.0
