"""Bounds store calls and stops making them while the store is out (a circuit breaker).

    closed ──call fails──► open: StoreUnavailable at once until retry_at
       ▲                     │ backoff passed: the next call tries the store
       └─── call succeeds ◄──┘ (fails again: backoff doubles, up to backoff_max_s)

The schedule is `OutageBackoff`'s, shared with the router's Redis guard.

The semantic cache is an optimisation: while Redis is out a request must go to a
model at once, not wait a timeout per lookup. Failures are the store's I/O errors
(redis.RedisError, which covers redis' ConnectionError and TimeoutError, OSError,
and TimeoutError when a call overruns `call_timeout_s`); anything else is a bug and
propagates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError

from triskel.router.state.backoff import OutageBackoff

T = TypeVar("T")
STORE_ERRORS = (RedisError, OSError, TimeoutError)


class StoreUnavailable(Exception):
    """The store cannot serve now. `is_failure`: a call failed (False: skipped in backoff)."""

    def __init__(self, operation: str, is_failure: bool) -> None:
        super().__init__(f"cache store unavailable ({operation})")
        self.operation = operation
        self.is_failure = is_failure


class StoreBreaker:
    def __init__(
        self,
        call_timeout_s: float,
        backoff_initial_s: float,
        backoff_max_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._call_timeout_s = call_timeout_s
        self._backoff = OutageBackoff(
            "cache store", "bypassing the cache", backoff_initial_s, backoff_max_s, clock
        )

    @property
    def is_open(self) -> bool:
        """True from a failed call until a call succeeds again."""
        return self._backoff.is_out

    async def call(
        self, operation: str, call: Callable[[], Awaitable[T]], timeout_s: float | None = None
    ) -> T:
        """`call()`'s result; StoreUnavailable when in backoff or when the call fails."""
        if self._backoff.should_skip():
            raise StoreUnavailable(operation, is_failure=False)
        try:
            async with asyncio.timeout(timeout_s or self._call_timeout_s):
                result = await call()
        except STORE_ERRORS as error:
            self._backoff.note_failure(operation, error)
            raise StoreUnavailable(operation, is_failure=True) from error
        self._backoff.note_success()
        return result
