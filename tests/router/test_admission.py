"""AdmissionController: priority order, tenant fairness, rejection, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from triskel.router.admission import (
    AdmissionController,
    AdmissionRejected,
    parse_priority,
    parse_tenant,
)

from support.waiting import wait_until


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


class Harness:
    """One running request holds the only slot; queued requests log their start."""

    def __init__(self, controller: AdmissionController) -> None:
        self.controller = controller
        self.started: list[str] = []
        self.release_holder = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def hold_slot(self) -> None:
        async def hold() -> None:
            async with self.controller.admit():
                await self.release_holder.wait()

        self.tasks.append(asyncio.create_task(hold()))
        await wait_until(lambda: self.controller.in_flight == 1)

    async def enqueue(self, name: str, priority: int = 0, tenant: str = "default") -> None:
        async def run() -> None:
            async with self.controller.admit(priority, tenant):
                self.started.append(name)

        depth = self.controller.queue_depth
        self.tasks.append(asyncio.create_task(run(), name=name))
        # Queue in a known order: wait until this request is waiting.
        await wait_until(lambda: self.controller.queue_depth == depth + 1)

    async def drain(self) -> None:
        self.release_holder.set()
        await asyncio.gather(*self.tasks)


@pytest.mark.asyncio
async def test_free_slots_admit_at_once_and_are_released() -> None:
    controller = AdmissionController(max_in_flight=2, max_queued=0)
    async with controller.admit(), controller.admit():
        assert controller.in_flight == 2
    assert (controller.in_flight, controller.queue_depth) == (0, 0)


@pytest.mark.asyncio
async def test_higher_priority_runs_first_fifo_within_a_priority() -> None:
    harness = Harness(AdmissionController(max_in_flight=1, max_queued=10))
    await harness.hold_slot()
    for name, priority in [("p0", 0), ("p5-first", 5), ("p1", 1), ("p5-second", 5), ("p-1", -1)]:
        await harness.enqueue(name, priority)
    await harness.drain()
    assert harness.started == ["p5-first", "p5-second", "p1", "p0", "p-1"]


@pytest.mark.asyncio
async def test_tenants_take_turns_within_a_priority() -> None:
    harness = Harness(AdmissionController(max_in_flight=1, max_queued=10))
    await harness.hold_slot()
    # Tenant a floods first; b and c must not wait behind all of a's requests.
    for name, tenant in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("b2", "b")]:
        await harness.enqueue(name, tenant=tenant)
    await harness.enqueue("c1", tenant="c")
    await harness.enqueue("urgent-a4", priority=1, tenant="a")
    await harness.drain()
    # Priority still beats fairness; then round-robin a, b, c, FIFO within each tenant.
    assert harness.started == ["urgent-a4", "a1", "b1", "c1", "a2", "b2", "a3"]


@pytest.mark.asyncio
async def test_a_full_queue_rejects_at_once_with_retry_after() -> None:
    controller = AdmissionController(max_in_flight=1, max_queued=2)
    harness = Harness(controller)
    await harness.hold_slot()
    await harness.enqueue("q1")
    await harness.enqueue("q2")
    with pytest.raises(AdmissionRejected) as rejected:
        async with controller.admit():
            pytest.fail("admitted past a full queue")
    assert rejected.value.retry_after_s >= 1
    assert rejected.value.queue_depth == 2
    assert "2 requests waiting" in str(rejected.value)
    assert controller.queue_depth == 2  # the rejected request left no trace
    await harness.drain()
    assert harness.started == ["q1", "q2"]


@pytest.mark.parametrize(
    ("completion_times_s", "queue_depth", "expected_s"),
    [
        # 10 completions in the 10 s window = 1/s; 4 queued + this one = 5 s to drain.
        ([991.0 + i for i in range(10)], 4, 5),
        # 100/s drains 5 requests in 0.05 s, but Retry-After is at least 1 s.
        ([999.0 + i / 100 for i in range(100)], 4, 1),
        # Completions older than the window do not count: nothing finished lately,
        # so back off a whole window.
        ([900.0, 950.0], 4, 10),
        # 1 completion per 10 s with 100 queued would be 1010 s; capped at 60.
        ([995.0], 100, 60),
    ],
)
def test_retry_after_follows_the_recent_completion_rate(
    completion_times_s: list[float], queue_depth: int, expected_s: int
) -> None:
    clock = FakeClock()
    clock.now_s = 0.0  # the controller has been up long enough to fill its window
    controller = AdmissionController(
        max_in_flight=1, max_queued=1000, rate_window_s=10.0, max_retry_after_s=60, clock=clock
    )
    for completed_at_s in completion_times_s:
        clock.now_s = completed_at_s
        controller._num_in_flight += 1  # white-box: record completions without running work
        controller._release(completed=True)
    controller._num_queued = queue_depth
    clock.now_s = 1000.0
    assert controller.retry_after_s() == expected_s


@pytest.mark.asyncio
async def test_cancelled_while_queued_leaves_the_queue() -> None:
    controller = AdmissionController(max_in_flight=1, max_queued=10)
    harness = Harness(controller)
    await harness.hold_slot()
    await harness.enqueue("a1", tenant="a")
    await harness.enqueue("b1", tenant="b")
    await harness.enqueue("a2", tenant="a")
    a1 = next(t for t in harness.tasks if t.get_name() == "a1")
    a1.cancel()
    await wait_until(lambda: controller.queue_depth == 2)
    harness.tasks.remove(a1)
    await harness.drain()
    assert a1.cancelled()
    # Tenant a was not served yet, so its turn passes to its next request.
    assert harness.started == ["a2", "b1"]
    assert (controller.in_flight, controller.queue_depth) == (0, 0)


@pytest.mark.asyncio
async def test_cancelled_after_being_granted_passes_the_slot_on() -> None:
    controller = AdmissionController(max_in_flight=1, max_queued=10)
    started: list[str] = []
    release_holder = asyncio.Event()
    queued: list[asyncio.Task[None]] = []

    async def run(name: str) -> None:
        async with controller.admit():
            started.append(name)

    async def hold() -> None:
        async with controller.admit():
            await release_holder.wait()
        # Leaving the block granted the slot to the first queued request, which has
        # not resumed yet; cancelling it now must hand the slot on, not leak it.
        queued[0].cancel()

    holder = asyncio.create_task(hold())
    await wait_until(lambda: controller.in_flight == 1)
    for name in ("granted-then-cancelled", "next"):
        queued.append(asyncio.create_task(run(name)))
        await wait_until(lambda: controller.queue_depth == len(queued))
    release_holder.set()
    # A leaked slot would leave "next" waiting forever: bound the wait.
    await asyncio.wait_for(asyncio.gather(holder, queued[1]), 5.0)
    assert queued[0].cancelled()
    assert started == ["next"]
    assert (controller.in_flight, controller.queue_depth) == (0, 0)


@pytest.mark.asyncio
async def test_a_failing_request_releases_its_slot() -> None:
    controller = AdmissionController(max_in_flight=1, max_queued=0)
    with pytest.raises(RuntimeError):
        async with controller.admit():
            raise RuntimeError("worker failed")
    assert controller.in_flight == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_in_flight": 0, "max_queued": 1}, "max_in_flight must be >= 1, got 0"),
        ({"max_in_flight": 1, "max_queued": -1}, "max_queued must be >= 0, got -1"),
        ({"max_in_flight": 1, "max_queued": 1, "rate_window_s": 0.0}, "rate_window_s"),
        ({"max_in_flight": 1, "max_queued": 1, "max_retry_after_s": 0}, "max_retry_after_s"),
    ],
)
def test_bad_limits_name_the_field_and_value(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdmissionController(**kwargs)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 0),  # no header: the default band
        ({"x-priority": "5"}, 5),
        ({"x-priority": "-3"}, -3),  # below default: runs after everything else
        ({"x-priority": " 7 "}, 7),  # surrounding whitespace is not part of the value
        ({"X-Priority": "2"}, 2),  # header names are case-insensitive
        ({"x-priority": "+1"}, 1),
    ],
)
def test_parse_priority(headers: Mapping[str, str], expected: int) -> None:
    assert parse_priority(headers) == expected


@pytest.mark.parametrize(
    "value",
    # Not integers; "1_0" and a full-width digit are integers only to Python's int();
    # ten digits is past the 9-digit bound.
    ["high", "1.5", "", "1_0", "\uff11", "1234567890"],
)
def test_parse_priority_rejects_bad_values_naming_header_and_value(value: str) -> None:
    with pytest.raises(ValueError, match="x-priority") as error:
        parse_priority({"x-priority": value})
    assert repr(value) in str(error.value)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "default"),
        ({"x-tenant": "acme"}, "acme"),
        ({"X-Tenant": " acme "}, "acme"),
        ({"x-tenant": "   "}, "default"),  # blank is the same as absent
    ],
)
def test_parse_tenant(headers: Mapping[str, str], expected: str) -> None:
    assert parse_tenant(headers) == expected
