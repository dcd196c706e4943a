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
        """`call()`'s result, or `fallback()` when Redis is in backoff or the call fails.

        A cancellation that arrives during the call is raised even when the client
        swallowed it: redis-py writes through `asyncio.wait_for`, which on Python 3.11
        can drop a cancellation arriving just as the write completes, and a background
        loop that went on would then never end (a router's shutdown waited forever).
        """
        if self._backoff.should_skip():
            return fallback()
        task = asyncio.current_task()
        cancels_before = task.cancelling() if task is not None else 0
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await call()
        except (RedisError, OSError, TimeoutError) as error:
            _raise_swallowed_cancel(task, cancels_before)
            self._note_failure(operation, error)
            return fallback()
        _raise_swallowed_cancel(task, cancels_before)
        if self._backoff.note_success() and self._on_recovered is not None:
            self._on_recovered()
        return result

    def _note_failure(self, operation: str, error: BaseException) -> None:
        self._on_error(operation)
        self._backoff.note_failure(operation, error)


def _raise_swallowed_cancel(task: asyncio.Task[object] | None, cancels_before: int) -> None:
    # The task stays marked as cancelling when a cancellation was swallowed.
    if task is not None and task.cancelling() > cancels_before:
        raise asyncio.CancelledError
