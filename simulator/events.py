"""The simulator's virtual clock: a time-ordered queue of events.

Events at the same instant pop in the order they were pushed (a sequence number
breaks ties), so a run never depends on how heapq orders equal times, and the
same inputs always replay the same history.
"""

from __future__ import annotations

import heapq
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


Event = Arrival | StepDone | TransferDone


class EventQueue:
    """Events by time; `now_s` is the time of the last popped event (the virtual clock)."""

    __slots__ = ("_heap", "_next_seq", "now_s")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Event]] = []
        self._next_seq = 0
        self.now_s = 0.0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, time_s: float, event: Event) -> None:
        """Schedules `event` at `time_s`; ValueError for a time before `now_s` (no time travel)."""
        if time_s < self.now_s:
            raise ValueError(f"time_s: {time_s} is before the clock ({self.now_s})")
        heapq.heappush(self._heap, (time_s, self._next_seq, event))
        self._next_seq += 1

    def pop(self) -> Event:
        """The earliest event; advances the clock to its time. IndexError when empty."""
        time_s, _, event = heapq.heappop(self._heap)
        self.now_s = time_s
        return event

    def clock(self) -> float:
        """The virtual time, as a callable for plugins (`PluginContext.clock`)."""
        return self.now_s
