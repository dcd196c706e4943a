"""Stops a goodput probe as soon as its run can no longer meet the attainment target.

A goodput search (`goodput.py`) asks each probe one question: does the run reach the
target attainment? An overloaded run answers it long before its last request ends —
once more than (1 - target) of all requests are sure to miss, no later request can
change the verdict. Replaying the rest costs as much as the part that decided (the
queues only grow), so a probe stops there. The verdict is the one the whole run gives,
not an estimate; the attainment it reports is then an upper bound.

A request is sure to miss when:

    it failed                                        (at its close)
    its first token is later than arrival + TTFT     (at the deadline, if still waiting:
                                                      any first token comes later still)
    it finished with TPOT over the target            (at its close)

Pure: the simulation tells it what happened and asks `is_out_of_reach`.
"""

from __future__ import annotations

from collections import deque

from triskel.simulator.metrics import SloTargets, meets_slo
from triskel.simulator.records import RequestRecord

_WAITING, _STARTED, _MISSED = 0, 1, 2
"""A request's state here: no first token yet, first token in time, counted as missed."""


class SloJudge:
    """Counts the requests of a run that are sure to miss `slo`, as the run goes."""

    __slots__ = ("_deadlines", "_num_requests", "_slo", "_state_of", "num_missed")

    def __init__(self, num_requests: int, slo: SloTargets) -> None:
        if num_requests < 1:
            raise ValueError(f"num_requests: need >= 1, got {num_requests}")
        self._num_requests = num_requests
        self._slo = slo
        self._state_of = bytearray(num_requests)  # _WAITING
        # (arrival_s, position) in arrival order: the order their TTFT deadlines pass.
        self._deadlines: deque[tuple[float, int]] = deque()
        self.num_missed = 0

    def arrived(self, position: int, arrival_s: float) -> None:
        """Request `position` arrived; its TTFT deadline starts (arrivals come in order)."""
        self._deadlines.append((arrival_s, position))

    def first_token(self, position: int) -> None:
        if self._state_of[position] == _WAITING:
            self._state_of[position] = _STARTED

    def closed(self, position: int, record: RequestRecord) -> None:
        """Request `position` finished or failed (`record`)."""
        if self._state_of[position] != _MISSED and not meets_slo(record, self._slo):
            self._miss(position)

    def advance(self, now_s: float) -> None:
        """Counts the requests still waiting for their first token past their deadline."""
        deadlines = self._deadlines
        ttft_s = self._slo.ttft_s
        state_of = self._state_of
        # The same subtraction `RequestRecord.ttft_s` makes, so "late" here is late there.
        while deadlines and now_s - deadlines[0][0] > ttft_s:
            _, position = deadlines.popleft()
            if state_of[position] == _WAITING:
                self._miss(position)

    @property
    def max_attainment(self) -> float:
        """The attainment the run reaches if every request not yet missed meets the SLO."""
        return (self._num_requests - self.num_missed) / self._num_requests

    @property
    def is_out_of_reach(self) -> bool:
        """True once the run cannot reach its attainment target (as `summarize` judges)."""
        return self.max_attainment < self._slo.attainment_target

    def _miss(self, position: int) -> None:
        self._state_of[position] = _MISSED
        self.num_missed += 1
