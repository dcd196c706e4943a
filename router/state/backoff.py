"""When to try a failing dependency again: the schedule the router's Redis guard and
the semantic cache's store breaker share. Pure, given a clock.

    up ──failure──► out: skip calls until retry_at
     ▲                │ retry_at passed: the next call tries again
     └── success ◄────┘ (fails again: the wait doubles, up to max_s)

Calls already in flight when an outage began fail before retry_at and leave the
schedule alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class OutageBackoff:
    def __init__(
        self, initial_s: float, max_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._initial_s = initial_s
        self._max_s = max_s
        self._clock = clock
        self._is_out = False
        self._wait_s = 0.0
        self._retry_at_s = 0.0
        self._num_failures = 0

    @property
    def is_out(self) -> bool:
        """True from a failure until a success."""
        return self._is_out

    def should_skip(self) -> bool:
        """Whether to skip the call: out, and the wait not over yet."""
        return self._is_out and self._clock() < self._retry_at_s

    def note_failure(self) -> float | None:
        """Records a failed call; the wait before the next try when this failure began
        the outage (to log it once), else None."""
        self._num_failures += 1
        now_s = self._clock()
        if not self._is_out:
            self._is_out = True
            self._wait_s = self._initial_s
            self._retry_at_s = now_s + self._wait_s
            return self._wait_s
        if now_s >= self._retry_at_s:  # a retry failed: wait longer
            self._wait_s = min(self._wait_s * 2, self._max_s)
            self._retry_at_s = now_s + self._wait_s
        return None

    def note_success(self) -> int | None:
        """Records a successful call; the number of failed calls when it ends an outage
        (to log the recovery once), else None."""
        if not self._is_out:
            return None
        num_failures, self._num_failures = self._num_failures, 0
        self._is_out = False
        return num_failures
