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


def test_events_pushed_together_interleave_as_if_pushed_one_by_one() -> None:
    one_by_one, together = EventQueue(), EventQueue()
    arrivals = [(1.0, Arrival(0)), (0.5, Arrival(1)), (1.0, Arrival(2)), (3.0, Arrival(3))]
    for time_s, event in arrivals:
        one_by_one.push(time_s, event)
    together.push_many(arrivals)
    for queue in (one_by_one, together):
        # At 1.0 the arrivals were pushed first, so they pop before the step ending then.
        queue.push(1.0, StepDone(0))
        queue.push(0.25, TransferDone("r9"))
    assert len(together) == len(one_by_one) == 6
    expected = [TransferDone("r9"), Arrival(1), Arrival(0), Arrival(2), StepDone(0), Arrival(3)]
    assert [one_by_one.pop() for _ in range(6)] == expected
    assert [together.pop() for _ in range(6)] == expected
    assert together.now_s == 3.0 and len(together) == 0


def test_events_pushed_together_refuse_the_past() -> None:
    queue = EventQueue()
    queue.push(1.0, Arrival(0))
    queue.pop()
    with pytest.raises(ValueError, match=r"time_s: 0\.5 is before the clock"):
        queue.push_many([(2.0, Arrival(1)), (0.5, Arrival(2))])
