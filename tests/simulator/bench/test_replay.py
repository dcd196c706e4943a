"""Open-loop replay on a fake clock: sends at their times, never held back by answers."""

from __future__ import annotations

import asyncio

import pytest

from triskel.simulator.bench.outcome import Outcome, RequestFailed
from triskel.simulator.bench.plan import BenchRequest
from triskel.simulator.bench.replay import replay


class FakeTime:
    """A clock that moves only when the replay sleeps."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def clock(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        # As a real sleep does, let the tasks already started run before time moves on.
        await asyncio.sleep(0)
        self.now_s += seconds


def planned(*send_times_s: float) -> list[BenchRequest]:
    return [BenchRequest(n, at_s, [1, 2], 2) for n, at_s in enumerate(send_times_s)]


@pytest.mark.asyncio
async def test_each_request_leaves_at_its_time_while_earlier_ones_are_unanswered() -> None:
    time = FakeTime()
    sent_at: dict[int, float] = {}
    release = asyncio.Event()

    async def send(request: BenchRequest) -> Outcome:
        sent_at[request.index] = time.clock()
        # No answer until every request is out: a closed loop would stall at the first.
        if len(sent_at) == 4:
            release.set()
        await release.wait()
        return Outcome(time.clock(), time.clock(), num_output_tokens=2)

    outcomes = await replay(
        planned(0.0, 0.5, 0.5, 2.0), send, time.clock, timeout_s=60, sleep=time.sleep
    )
    # Two requests due at the same time leave together, without a sleep between.
    assert sent_at == {0: 0.0, 1: 0.5, 2: 0.5, 3: 2.0}
    assert len(outcomes) == 4 and all(o.error is None for o in outcomes)


@pytest.mark.asyncio
async def test_failures_become_outcomes_in_request_order_and_are_reported_as_they_come() -> None:
    time = FakeTime()
    seen: list[str | None] = []

    async def send(request: BenchRequest) -> Outcome:
        if request.index == 0:
            raise RequestFailed("HTTP 503: no worker")
        if request.index == 1:
            await asyncio.Event().wait()  # never answers
        if request.index == 2:
            raise ConnectionResetError("peer reset")
        return Outcome(1.0, 2.0, num_output_tokens=2)

    outcomes = await replay(
        planned(0, 0, 0, 0),
        send,
        time.clock,
        timeout_s=0.01,
        on_done=lambda o: seen.append(o.error),
    )
    assert [o.error for o in outcomes] == [
        "HTTP 503: no worker",
        "no complete answer within 0.01 s",
        "ConnectionResetError: peer reset",  # a client-side surprise, not a crash
        None,
    ]
    assert sorted(seen, key=str) == sorted((o.error for o in outcomes), key=str)


@pytest.mark.asyncio
async def test_an_interrupted_replay_cancels_the_requests_in_flight() -> None:
    time = FakeTime()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def send(request: BenchRequest) -> Outcome:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    run = asyncio.create_task(replay(planned(0), send, time.clock, timeout_s=60))
    await asyncio.wait_for(started.wait(), 5)
    run.cancel()
    await asyncio.wait_for(cancelled.wait(), 5)
