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
    """One call in flight to one worker; `abort` ends its current or next wait."""

    __slots__ = ("_is_aborted", "_scope")

    def __init__(self) -> None:
        self._is_aborted = False
        # Set only while a wait is suspended on the worker.
        self._scope: asyncio.Timeout | None = None

    @property
    def is_aborted(self) -> bool:
        return self._is_aborted

    async def wait(self, awaitable: Awaitable[T], idle_s: float | None = None) -> T:
        """`awaitable`'s result. WorkerSilent once the call is aborted; WorkerCallError
        (TIMEOUT) when `idle_s` passes first."""
        if self._is_aborted:
            _close(awaitable)
            raise WorkerSilent()
        try:
            # asyncio.timeout cancels this task alone and tells its own cancellation from
            # another's (a client that went away), so both keep their meaning.
            async with asyncio.timeout(idle_s) as scope:
                self._scope = scope
                return await awaitable
        except TimeoutError:
            if self._is_aborted:
                raise WorkerSilent() from None
            raise WorkerCallError(
                CallFailure.TIMEOUT, f"no event from the worker for {idle_s:g} s"
            ) from None
        finally:
            self._scope = None

    def abort(self) -> None:
        """Ends the wait in progress now (from another task), or the next one."""
        if self._is_aborted:
            return
        self._is_aborted = True
        if self._scope is not None:
            self._scope.reschedule(asyncio.get_running_loop().time())


def _close(awaitable: Awaitable[object]) -> None:
    """Closes a coroutine that will not be awaited (else Python warns it never was)."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()
