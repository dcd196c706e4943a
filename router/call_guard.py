"""A call to a worker that the router can end from outside: when the worker goes silent
(`triskel.router.staleness`) or a decode stream pauses past its idle bound.

gRPC cannot tell a frozen worker from a slow one: the frozen process's kernel keeps its
connections open (and ACKs TCP), so its calls wait for their whole stage bound. The
router knows better, from the load reports that stopped, and ends the calls itself.

Only the waits on the worker are interruptible (`GuardedCall.wait`), never the code
between them: a decode stream's consumer may be writing to its client when the worker
goes silent, and must not be cancelled there. An abort that finds the call between
waits is kept and raised by the next wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from triskel.router.worker_client import CallFailure, WorkerCallError

T = TypeVar("T")


class WorkerSilent(WorkerCallError):
    """The worker stopped answering while the call was in flight (retriable elsewhere)."""

    def __init__(self) -> None:
        super().__init__(CallFailure.UNAVAILABLE, "the worker stopped answering")


class GuardedCall:
    """One call in flight to one worker; `abort` ends its current or next wait.

    The idle bound is one timer per call, not one per wait: a decode stream waits once
    per event, and `asyncio.timeout` scheduled and cancelled a timer each time (~4-7 µs
    an event, docs/benchmarks.md). The timer, when it comes, checks the deadline of the
    wait then in progress and is set again for it if that is later. Expiry and abort
    cancel the waiting task and tell their cancellation from any other as
    `asyncio.timeout` does (`Task.cancelling` / `uncancel`): a client that went away
    still cancels the call. `close` drops the timer when the call ends.
    """

    __slots__ = ("_cancelling", "_deadline", "_is_aborted", "_is_expiring", "_task", "_timer")

    def __init__(self) -> None:
        self._is_aborted = False
        # The task waiting on the worker: set only while a wait is suspended there.
        self._task: asyncio.Task[object] | None = None
        # Its cancellations requested before the wait: more after ours are another's.
        self._cancelling = 0
        # When the wait in progress times out (None: no bound).
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        # This guard cancelled the wait in progress (idle bound or abort).
        self._is_expiring = False

    @property
    def is_aborted(self) -> bool:
        return self._is_aborted

    async def wait(self, awaitable: Awaitable[T], idle_s: float | None = None) -> T:
        """`awaitable`'s result. WorkerSilent once the call is aborted; WorkerCallError
        (TIMEOUT) when `idle_s` passes first."""
        if self._is_aborted:
            _close(awaitable)
            raise WorkerSilent()
        task = asyncio.current_task()
        assert task is not None  # waits run in tasks
        if idle_s is None:
            self._deadline = None
        else:
            loop = task.get_loop()
            deadline = self._deadline = loop.time() + idle_s
            timer = self._timer
            if timer is None or timer.when() > deadline:
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(deadline, self._on_timer)
        self._task = task
        self._cancelling = task.cancelling()
        try:
            return await awaitable
        except asyncio.CancelledError:
            if not self._is_expiring:
                raise
            self._is_expiring = False
            if task.uncancel() > self._cancelling:
                raise  # cancelled by another too (the client went away): that wins
            if self._is_aborted:
                raise WorkerSilent() from None
            raise WorkerCallError(
                CallFailure.TIMEOUT, f"no event from the worker for {idle_s:g} s"
            ) from None
        finally:
            self._task = None
            if self._is_expiring:  # cancelled, yet the awaitable returned: as asyncio.timeout
                self._is_expiring = False
                task.uncancel()

    def abort(self) -> None:
        """Ends the wait in progress now (from another task), or the next one."""
        if self._is_aborted:
            return
        self._is_aborted = True
        self._expire()

    def close(self) -> None:
        """The call ended: its idle timer goes."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        task, deadline = self._task, self._deadline
        if task is None or deadline is None:
            return  # no bounded wait in progress: the next one sets its own timer
        loop = task.get_loop()
        if deadline - loop.time() > _EARLY_S:  # the wait began after the timer was set
            self._timer = loop.call_at(deadline, self._on_timer)
            return
        self._expire()

    def _expire(self) -> None:
        if self._task is not None and not self._is_expiring:
            self._is_expiring = True
            self._task.cancel()


# A deadline this near when the timer comes counts as come: the loop may run a timer a
# little early, and setting it again for microseconds would spin (bounds are seconds).
_EARLY_S = 0.001


def _close(awaitable: Awaitable[object]) -> None:
    """Closes a coroutine that will not be awaited (else Python warns it never was)."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()
