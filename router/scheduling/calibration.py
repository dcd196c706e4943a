"""How far each worker's real latencies sit from the model's predictions, learnt online.

The step-latency model is a profile's (or, for an engine reporting none, a flat
per-token guess); real workers drift from it (another model build, a throttled GPU,
interference the model leaves out). Each time the router sees a TTFT or a TPOT it had
predicted, it folds observed ÷ predicted into that worker's factor (an exponentially
weighted mean), and later predictions for the worker are scaled by it. The simulator
feeds the same observations, so it calibrates alike.

No I/O: the router and the simulator own one each and call `observe`. Factors stay for
the owner's life, two floats per worker id ever observed.
"""

from __future__ import annotations

from enum import Enum

# One observation moves the factor a fifth of the way: a handful of requests adapt it,
# a single outlier does not swing it.
_WEIGHT = 0.2
# A factor stays within these bounds: a stuck or pathological observation cannot turn a
# worker into one that is never (or always) chosen.
_LOWEST = 0.25
_HIGHEST = 4.0


class Kind(Enum):
    TTFT = "ttft"
    TPOT = "tpot"


class Calibration:
    """Per worker and kind: observed ÷ predicted latency; 1 until observed."""

    __slots__ = ("_factors",)

    def __init__(self) -> None:
        self._factors: dict[tuple[str, Kind], float] = {}

    def factor(self, worker_id: str, kind: Kind) -> float:
        return self._factors.get((worker_id, kind), 1.0)

    def observe(self, worker_id: str, kind: Kind, predicted_ms: float, observed_ms: float) -> None:
        """Folds one observation in (a prediction of 0 ms says nothing: ignored).

        `predicted_ms` is the raw model's prediction, before this factor scaled it."""
        if predicted_ms <= 0 or observed_ms < 0:
            return
        ratio = min(_HIGHEST, max(_LOWEST, observed_ms / predicted_ms))
        key = (worker_id, kind)
        old = self._factors.get(key, 1.0)
        self._factors[key] = old + _WEIGHT * (ratio - old)
