"""Load predictors: EWMA by hand; Holt follows a ramp the EWMA lags behind."""

from __future__ import annotations

import pytest

from triskel.planner.predictors import HOLT_MIN_POINTS, ewma, holt, predict


def test_ewma_by_hand() -> None:
    # 10 → 0.5·20 + 0.5·10 = 15 → 0.5·40 + 0.5·15 = 27.5
    assert ewma([10.0, 20.0, 40.0], alpha=0.5) == pytest.approx(27.5)
    assert ewma([]) == 0.0
    with pytest.raises(ValueError, match="alpha"):
        ewma([1.0], alpha=0.0)


def test_holt_follows_a_ramp_that_the_ewma_lags() -> None:
    ramp = [10.0 + 5.0 * step for step in range(12)]  # 10, 15, ..., 65; next is 70
    assert ewma(ramp) < 65.0  # behind even the last value
    assert holt(ramp) == pytest.approx(70.0, abs=3.0)


def test_holt_on_a_flat_series_and_never_below_zero() -> None:
    assert holt([7.0] * 8) == 7.0
    falling = [60.0 - 10.0 * step for step in range(7)]  # 60 ... 0
    assert holt(falling, horizon=5) >= 0.0


def test_predict_names_the_predictor_that_answered() -> None:
    short = [1.0, 2.0, 3.0]
    assert len(short) < HOLT_MIN_POINTS
    assert predict("holt", short).predictor == "holt→ewma"
    assert predict("holt", short).value == pytest.approx(ewma(short))
    assert predict("holt", [float(x) for x in range(10)]).predictor == "holt"
    assert predict("ewma", short).predictor == "ewma"
