"""Bounds Redis calls and turns failures into fallbacks (a small circuit breaker).

    healthy ──call fails──► outage: fallbacks only until retry_at
       ▲                      │ backoff passed: the next call tries Redis
       └──── call succeeds ◄──┘ (fails again: backoff doubles, up to backoff_max_s)

Every call runs under `call_timeout_s`, so a hung Redis costs one timeout per
backoff period, not one per request. Failures are counted through `on_error` (the
router turns it into `triskel_redis_errors_total`) and logged once per outage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError

from triskel.router.state.backoff import OutageBackoff
from triskel.router.state.config import StateConfig

T = TypeVar("T")


class RedisGuard:
    """Runs Redis calls with a deadline and serves fallbacks while Redis is out.

    `on_error(operation)` is called once per failed call; `on_recovered()` once when a
    call succeeds after an outage (e.g. to republish this router's state at once).
    """

    def __init__(
        self,
        config: StateConfig,
        on_error: Callable[[str], None],
        on_recovered: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout_s = config.call_timeout_s
        self._on_error = on_error
        self._on_recovered = on_recovered
        self._backoff = OutageBackoff(
            "Redis",
            "serving shared state from memory",
            config.backoff_initial_s,
            config.backoff_max_s,
            clock,
        )

    @property
    def is_out(self) -> bool:
        """True from a failed call until a call succeeds again."""
        return self._backoff.is_out

    async def run(
        self, operation: str, call: Callable[[], Awaitable[T]], fallback: Callable[[], T]
    ) -> T:
        """`call()`'s result, or `fallback()` when Redis is in backoff or the call fails."""
        if self._backoff.should_skip():
            return fallback()
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await call()
        except (RedisError, OSError, TimeoutError) as error:
            self._note_failure(operation, error)
            return fallback()
        if self._backoff.note_success() and self._on_recovered is not None:
            self._on_recovered()
        return result

    async def run_in_loop(
        self, operation: str, call: Callable[[], Awaitable[T]], fallback: Callable[[], T]
    ) -> T:
        """`run` for background loops: also raises a cancellation the client swallowed.

        redis-py writes through `asyncio.wait_for`, which on Python 3.11 can swallow a
        cancellation arriving just as the write completes. The task stays marked as
        cancelling, so this raises it again; a loop that went on would never end.
        """
        result = await self.run(operation, call, fallback)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        return result

    def _note_failure(self, operation: str, error: BaseException) -> None:
        self._on_error(operation)
        self._backoff.note_failure(operation, error)
