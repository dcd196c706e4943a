"""When to try a failing dependency again: the schedule the router's Redis guard and
the semantic cache's store breaker share. Pure, given a clock.

    up ──failure──► out: skip calls until retry_at
     ▲                │ retry_at passed: the next call tries again
     └── success ◄────┘ (fails again: the wait doubles, up to max_s)

Calls already in flight when an outage began fail before retry_at and leave the
schedule alone. An outage is logged once when it begins and once when it ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

_log = logging.getLogger(__name__)


class OutageBackoff:
    """`what` names the dependency in the log ("Redis"), `meanwhile` what is done
    without it ("serving shared state from memory")."""

    def __init__(
        self,
        what: str,
        meanwhile: str,
        initial_s: float,
        max_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._what, self._meanwhile = what, meanwhile
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

    def note_failure(self, operation: str, error: BaseException) -> None:
        self._num_failures += 1
        now_s = self._clock()
        if not self._is_out:
            self._is_out = True
            self._wait_s = self._initial_s
            self._retry_at_s = now_s + self._wait_s
            _log.warning(
                "%s unavailable (%s: %s: %s); %s, retrying after %.2f s",
                self._what,
                operation,
                type(error).__name__,
                error,
                self._meanwhile,
                self._wait_s,
            )
        elif now_s >= self._retry_at_s:  # a retry failed: wait longer
            self._wait_s = min(self._wait_s * 2, self._max_s)
            self._retry_at_s = now_s + self._wait_s

    def note_success(self) -> bool:
        """Records a successful call; True when it ends an outage."""
        if not self._is_out:
            return False
        _log.info("%s is back after %d failed calls", self._what, self._num_failures)
        self._num_failures = 0
        self._is_out = False
        return True
