"""The simulator's virtual clock: a time-ordered queue of events.

Events at the same instant pop in the order they were pushed (a sequence number
breaks ties), so a run never depends on how heapq orders equal times, and the
same inputs always replay the same history.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Arrival:
    """Trace request `index` reaches the router."""

    index: int


@dataclass(frozen=True, slots=True)
class StepDone:
    """The step instance `instance` started has run its modelled duration."""

    instance: int


@dataclass(frozen=True, slots=True)
class TransferDone:
    """The KV of request `request_id` has reached its decode instance."""

    request_id: str


@dataclass(frozen=True, slots=True)
class Tick:
    """The autoscaler's interval has passed: observe and decide."""


@dataclass(frozen=True, slots=True)
class Ready:
    """Instance `instance` (an index, as for StepDone) has started and may serve."""

    instance: int


Event = Arrival | StepDone | TransferDone | Tick | Ready


class EventQueue:
    """Events by time; `now_s` is the time of the last popped event (the virtual clock).

    Events known up front (a trace's arrivals) can be scheduled at once with
    `push_many`: they wait in a sorted list beside the heap, which then holds only
    the few dozen events of running steps and transfers, not the whole trace, so
    every heap operation stays shallow. The order is the same as pushing them.
    """

    __slots__ = ("_heap", "_next_scheduled", "_next_seq", "_scheduled", "now_s")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Event]] = []
        # Sorted by (time, seq); entries before `_next_scheduled` have been popped.
        self._scheduled: list[tuple[float, int, Event]] = []
        self._next_scheduled = 0
        self._next_seq = 0
        self.now_s = 0.0

    def __len__(self) -> int:
        return len(self._heap) + len(self._scheduled) - self._next_scheduled

    def push(self, time_s: float, event: Event) -> None:
        """Schedules `event` at `time_s`; ValueError for a time before `now_s` (no time travel)."""
        if time_s < self.now_s:
            raise ValueError(f"time_s: {time_s} is before the clock ({self.now_s})")
        heapq.heappush(self._heap, (time_s, self._next_seq, event))
        self._next_seq += 1

    def push_many(self, timed_events: Iterable[tuple[float, Event]]) -> None:
        """Schedules every `(time_s, event)`, as `push` would one after another."""
        entries = self._scheduled[self._next_scheduled :]
        for time_s, event in timed_events:
            if time_s < self.now_s:
                raise ValueError(f"time_s: {time_s} is before the clock ({self.now_s})")
            entries.append((time_s, self._next_seq, event))
            self._next_seq += 1
        # (time, seq) pairs are unique, so sorting never compares two events.
        entries.sort()
        self._scheduled = entries
        self._next_scheduled = 0

    def pop(self) -> Event:
        """The earliest event; advances the clock to its time. IndexError when empty."""
        heap = self._heap
        scheduled = self._scheduled
        index = self._next_scheduled
        if index < len(scheduled) and (not heap or scheduled[index] < heap[0]):
            time_s, _, event = scheduled[index]
            self._next_scheduled = index + 1
        else:
            time_s, _, event = heapq.heappop(heap)
        self.now_s = time_s
        return event

    def clock(self) -> float:
        """The virtual time, as a callable for plugins (`PluginContext.clock`)."""
        return self.now_s
