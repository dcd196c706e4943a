"""Load predictors: the next interval's value of a series (arrival rate, lengths) from
its recent history. Pure functions of the history, so the operator, `triskel up` and
the simulator predict alike.

    ewma   exponentially weighted moving average: level only, reacts in a few intervals
           (AIBrix's and Knative's windows average the same way, without the weights)
    holt   Holt's linear trend with a damped trend (statsmodels' `Holt`): follows a ramp
           instead of lagging behind it, the damping keeps a burst's slope from being
           extrapolated far (Dynamo's planner offers ARIMA and Prophet for the same job)

Both return at least 0. Holt needs `HOLT_MIN_POINTS` points to fit a trend; with
fewer, it gives the EWMA (documented, not silent: the decision record names the
predictor that answered).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

PredictorName = Literal["ewma", "holt"]
HOLT_MIN_POINTS = 6


@dataclass(frozen=True, slots=True)
class Prediction:
    value: float
    predictor: str  # which one answered: "ewma", "holt", or "holt→ewma" (too few points)


def ewma(history: Sequence[float], alpha: float = 0.5) -> float:
    """The EWMA of `history` (oldest first); 0 for an empty history."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha: must be in (0, 1], got {alpha}")
    level = math.nan
    for value in history:
        level = value if math.isnan(level) else alpha * value + (1.0 - alpha) * level
    return 0.0 if math.isnan(level) else max(0.0, level)


def holt(history: Sequence[float], horizon: int = 1) -> float:
    """Holt's damped-trend forecast `horizon` intervals ahead (statsmodels fits the
    smoothing parameters by least squares)."""
    import numpy as np
    from statsmodels.tsa.holtwinters import Holt

    values = np.asarray(history, dtype=np.float64)
    if np.ptp(values) == 0.0:
        return max(0.0, float(values[-1]))  # flat: nothing to fit
    with warnings.catch_warnings():
        # Convergence warnings on short, noisy series: the fit is still the best found.
        warnings.simplefilter("ignore")
        fitted = Holt(values, damped_trend=True, initialization_method="estimated").fit()
        forecast = float(fitted.forecast(horizon)[-1])
    return max(0.0, forecast) if math.isfinite(forecast) else max(0.0, float(values[-1]))


def predict(
    name: PredictorName, history: Sequence[float], alpha: float = 0.5, horizon: int = 1
) -> Prediction:
    if name == "ewma":
        return Prediction(ewma(history, alpha), "ewma")
    if len(history) < HOLT_MIN_POINTS:
        return Prediction(ewma(history, alpha), "holt→ewma")
    return Prediction(holt(history, horizon), "holt")
