"""Times an adaptive choice's TTFT and TPOT and folds them into the calibration; the
router runs it on the wall clock, the simulator on its virtual one."""

from __future__ import annotations

from collections.abc import Callable

from triskel.router.scheduling.calibration import Calibration, Kind
from triskel.router.scheduling.placement import Expected


class LatencyWatch:
    """One request's observed latencies against what its choice expected."""

    __slots__ = ("_calibration", "_clock", "_expected", "_first_token_s", "_started_s")

    def __init__(
        self, calibration: Calibration, expected: Expected, clock: Callable[[], float]
    ) -> None:
        self._calibration = calibration
        self._expected = expected
        self._clock = clock
        self._started_s = clock()
        self._first_token_s: float | None = None

    @property
    def prefill_worker_id(self) -> str:
        """The worker the TTFT was predicted on."""
        return self._expected.prefill_worker_id

    def first_token(self) -> None:
        """The first token arrived (later calls change nothing)."""
        if self._first_token_s is not None:
            return
        self._first_token_s = now_s = self._clock()
        expected = self._expected
        observed_ms = (now_s - self._started_s) * 1000
        self._calibration.observe(
            expected.prefill_worker_id, Kind.TTFT, expected.ttft_ms, observed_ms
        )

    def finished(self, num_tokens: int) -> None:
        """The answer ended after `num_tokens` tokens: its mean time per output token."""
        if self._first_token_s is None or num_tokens < 2:
            return
        expected = self._expected
        observed_ms = (self._clock() - self._first_token_s) * 1000 / (num_tokens - 1)
        self._calibration.observe(
            expected.decode_worker_id, Kind.TPOT, expected.tpot_ms, observed_ms
        )
