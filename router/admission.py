"""Router admission: a bounded queue with priority bands and per-tenant fairness.

    admit(priority, tenant)
      ├─ a slot is free and nobody waits ──► run now
      ├─ max_queued requests already wait ──► AdmissionRejected(retry_after_s)  (front: 429)
      └─ otherwise wait in the queue:

         band 5: tenant a [r1 r4] → tenant b [r2]    highest band first;
         band 0: tenant c [r3]                        round-robin across a band's tenants;
                                                      FIFO within a tenant

The shape follows llm-d's flow control (priority bands, fairness within a band, 429
when saturated). A released slot is handed straight to the next waiter, so a newcomer
cannot take a slot that a woken waiter was promised. Pure asyncio, no I/O.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping

from triskel.common.routing_api import AdmissionSpec

PRIORITY_HEADER = "x-priority"
TENANT_HEADER = "x-tenant"
DEFAULT_PRIORITY = 0
DEFAULT_TENANT = "default"
# ASCII digits only (Python's int() also takes "1_0" and non-ASCII digits), and few
# enough of them that a priority is a small number.
_PRIORITY_PATTERN = re.compile(r"[+-]?[0-9]{1,9}")

_Waiter = asyncio.Future[None]
_Band = OrderedDict[str, deque[_Waiter]]


class AdmissionRejected(Exception):
    """The queue is full; the client should retry after `retry_after_s` whole seconds."""

    def __init__(self, retry_after_s: int, queue_depth: int) -> None:
        super().__init__(
            f"admission queue full ({queue_depth} requests waiting); retry after {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s
        self.queue_depth = queue_depth


def admission_for(spec: AdmissionSpec, processes: int = 1) -> AdmissionController:
    """The controller of one of `processes` router processes: its share of `spec`."""
    return AdmissionController(
        process_share(spec.max_in_flight, processes), process_share(spec.max_queued, processes)
    )


def process_share(limit: int, processes: int) -> int:
    """One of `processes` sibling processes' part of a router-wide `limit` (rounded up:
    the kernel spreads connections, not requests, evenly, so a share is a bound per
    process and the router as a whole may run up to `processes - 1` more)."""
    return -(-limit // processes)


class Admitted:
    """`AdmissionController.admit`'s `async with` (a class, not an async generator: one
    per request, ~1 µs less each)."""

    __slots__ = ("_controller", "_priority", "_tenant")

    def __init__(self, controller: AdmissionController, priority: int, tenant: str) -> None:
        self._controller, self._priority, self._tenant = controller, priority, tenant

    async def __aenter__(self) -> None:
        await self._controller._acquire(self._priority, self._tenant)

    async def __aexit__(self, *exc_info: object) -> None:
        self._controller._release(completed=True)


class AdmissionController:
    """At most `max_in_flight` requests run and at most `max_queued` wait.

    `retry_after_s` for rejected requests estimates how long the current queue takes
    to drain at the completion rate seen over the last `rate_window_s` seconds,
    clamped to [1, `max_retry_after_s`].
    """

    def __init__(
        self,
        max_in_flight: int,
        max_queued: int,
        *,
        rate_window_s: float = 10.0,
        max_retry_after_s: int = 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if max_queued < 0:
            raise ValueError(f"max_queued must be >= 0, got {max_queued}")
        if rate_window_s <= 0:
            raise ValueError(f"rate_window_s must be > 0, got {rate_window_s}")
        if max_retry_after_s < 1:
            raise ValueError(f"max_retry_after_s must be >= 1, got {max_retry_after_s}")
        self._max_in_flight = max_in_flight
        self._max_queued = max_queued
        self._rate_window_s = rate_window_s
        self._max_retry_after_s = max_retry_after_s
        self._clock = clock
        self._started_at_s = clock()
        self._bands: dict[int, _Band] = {}
        self._num_queued = 0
        self._num_in_flight = 0
        self._completions_s: deque[float] = deque()

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a slot."""
        return self._num_queued

    @property
    def in_flight(self) -> int:
        """Requests holding a slot."""
        return self._num_in_flight

    def admit(self, priority: int = DEFAULT_PRIORITY, tenant: str = DEFAULT_TENANT) -> Admitted:
        """Holds a slot for the `async with` body; raises AdmissionRejected at once when the
        queue is full.

        A caller cancelled while waiting leaves the queue; one cancelled after being
        granted a slot but before running passes the slot on.
        """
        return Admitted(self, priority, tenant)

    def retry_after_s(self) -> int:
        """Whole seconds a rejected client should wait before retrying (>= 1)."""
        now_s = self._clock()
        self._forget_completions_before(now_s - self._rate_window_s)
        observed_s = min(self._rate_window_s, now_s - self._started_at_s)
        if not self._completions_s or observed_s <= 0:
            # Nothing finished lately: the queue may be stuck, so back off a full window.
            estimate_s = self._rate_window_s
        else:
            completions_per_s = len(self._completions_s) / observed_s
            estimate_s = (self._num_queued + 1) / completions_per_s
        return max(1, min(self._max_retry_after_s, math.ceil(estimate_s)))

    async def _acquire(self, priority: int, tenant: str) -> None:
        if self._num_queued == 0 and self._num_in_flight < self._max_in_flight:
            self._num_in_flight += 1
            return
        if self._num_queued >= self._max_queued:
            raise AdmissionRejected(self.retry_after_s(), self._num_queued)
        waiter: _Waiter = asyncio.get_running_loop().create_future()
        band = self._bands.setdefault(priority, OrderedDict())
        band.setdefault(tenant, deque()).append(waiter)
        self._num_queued += 1
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(completed=False)
            else:
                self._remove(priority, tenant, waiter)
            raise

    def _release(self, *, completed: bool) -> None:
        self._num_in_flight -= 1
        if completed:
            now_s = self._clock()
            self._completions_s.append(now_s)
            self._forget_completions_before(now_s - self._rate_window_s)
        while self._num_queued > 0 and self._num_in_flight < self._max_in_flight:
            self._pop_next().set_result(None)
            self._num_in_flight += 1

    def _pop_next(self) -> _Waiter:
        priority = max(self._bands)
        band = self._bands[priority]
        tenant, waiters = next(iter(band.items()))
        waiter = waiters.popleft()
        if waiters:
            band.move_to_end(tenant)  # round-robin: this tenant goes behind the others
        else:
            del band[tenant]
            if not band:
                del self._bands[priority]
        self._num_queued -= 1
        return waiter

    def _remove(self, priority: int, tenant: str, waiter: _Waiter) -> None:
        band = self._bands[priority]
        waiters = band[tenant]
        waiters.remove(waiter)
        self._num_queued -= 1
        if not waiters:
            del band[tenant]
            if not band:
                del self._bands[priority]

    def _forget_completions_before(self, cutoff_s: float) -> None:
        while self._completions_s and self._completions_s[0] < cutoff_s:
            self._completions_s.popleft()


def parse_priority(headers: Mapping[str, str]) -> int:
    """The request's priority from `x-priority` (default 0); higher runs first.

    Raises ValueError naming the header and value when it is not an integer of at
    most 9 digits; the fronts answer that with 400.
    """
    value = _header(headers, PRIORITY_HEADER)
    if value is None:
        return DEFAULT_PRIORITY
    if not _PRIORITY_PATTERN.fullmatch(value.strip()):
        raise ValueError(
            f"header {PRIORITY_HEADER}: expected an integer of at most 9 digits, got {value!r}"
        )
    return int(value)


def parse_tenant(headers: Mapping[str, str]) -> str:
    """The request's tenant from `x-tenant` ("default" when absent or blank)."""
    value = _header(headers, TENANT_HEADER)
    return value.strip() if value and value.strip() else DEFAULT_TENANT


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # HTTP header names are case-insensitive; gRPC metadata keys arrive lower-case.
    value = headers.get(name)
    if value is not None:
        return value
    return next((v for k, v in headers.items() if k.lower() == name), None)
