"""The event queue: time order, push order at equal times, and a clock that never goes back."""

from __future__ import annotations

import pytest

from triskel.simulator.events import Arrival, EventQueue, StepDone, TransferDone


def test_pops_by_time_then_push_order() -> None:
    queue = EventQueue()
    queue.push(2.0, Arrival(0))
    queue.push(1.0, StepDone(3))
    queue.push(1.0, TransferDone("r1"))
    # 1.0 twice: StepDone was pushed first, so it pops first (no heapq tie surprises).
    assert [queue.pop() for _ in range(3)] == [StepDone(3), TransferDone("r1"), Arrival(0)]
    assert queue.now_s == 2.0
    assert len(queue) == 0


def test_clock_follows_popped_events() -> None:
    queue = EventQueue()
    queue.push(0.5, Arrival(0))
    assert queue.clock() == 0.0
    queue.pop()
    assert queue.clock() == 0.5


def test_refuses_an_event_in_the_past() -> None:
    queue = EventQueue()
    queue.push(1.0, Arrival(0))
    queue.pop()
    with pytest.raises(ValueError, match=r"time_s: 0\.5 is before the clock"):
        queue.push(0.5, Arrival(1))


def test_pop_on_empty_raises() -> None:
    with pytest.raises(IndexError):
        EventQueue().pop()
