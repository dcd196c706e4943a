"""A call to a silent worker ends at once, whether it waits on the worker or not; other
cancellations keep their meaning."""

from __future__ import annotations

import asyncio
import inspect
import warnings

import pytest

from triskel.router.call_guard import GuardedCall, WorkerSilent
from triskel.router.worker_client import CallFailure, WorkerCallError


async def never(started: asyncio.Event | None = None) -> int:
    if started is not None:
        started.set()
    await asyncio.Event().wait()
    return 0


async def answer() -> int:
    return 42


@pytest.mark.asyncio
async def test_an_answer_passes_through() -> None:
    assert await GuardedCall().wait(answer()) == 42


@pytest.mark.asyncio
async def test_an_abort_ends_the_wait_in_progress() -> None:
    guard, started = GuardedCall(), asyncio.Event()
    waiting = asyncio.create_task(guard.wait(never(started)))
    await started.wait()  # it waits on the worker now
    guard.abort()
    with pytest.raises(WorkerSilent) as caught:
        await asyncio.wait_for(waiting, 5)
    assert caught.value.failure is CallFailure.UNAVAILABLE


@pytest.mark.asyncio
async def test_an_abort_between_waits_ends_the_next_one_and_closes_its_coroutine() -> None:
    # The consumer was writing to its client when the worker went silent: not cancelled
    # there, but its next wait on the worker fails at once.
    guard = GuardedCall()
    assert await guard.wait(answer()) == 42
    guard.abort()
    coroutine = never()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would fail here
        with pytest.raises(WorkerSilent):
            await guard.wait(coroutine)
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED


@pytest.mark.asyncio
async def test_an_idle_bound_is_a_timeout() -> None:
    with pytest.raises(WorkerCallError) as caught:
        await GuardedCall().wait(never(), idle_s=0.05)
    assert caught.value.failure is CallFailure.TIMEOUT
    assert not isinstance(caught.value, WorkerSilent)


@pytest.mark.asyncio
async def test_a_client_that_goes_away_still_cancels_the_call() -> None:
    # Aborted and cancelled at once: the cancellation wins, so the request is dropped as
    # a disconnect and not answered with an error nobody reads.
    guard, started = GuardedCall(), asyncio.Event()
    waiting = asyncio.create_task(guard.wait(never(started)))
    await started.wait()
    guard.abort()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 5)


@pytest.mark.asyncio
async def test_an_abort_after_the_answer_arrived_fails_the_next_wait_only() -> None:
    guard = GuardedCall()
    first = await guard.wait(answer())
    guard.abort()
    guard.abort()  # idempotent
    assert first == 42 and guard.is_aborted
    with pytest.raises(WorkerSilent):
        await guard.wait(answer())


async def after(delay_s: float) -> int:
    await asyncio.sleep(delay_s)
    return 7


@pytest.mark.asyncio
async def test_the_idle_bound_counts_from_each_wait_not_from_the_first() -> None:
    # One timer serves the whole call: each event in time moves the deadline on, so a
    # stream slower in all than the bound, never idle that long, is not cut.
    # 0.4 s in all against a bound of 0.25, each event 0.17 s inside it (a busy CI
    # machine may hold the loop for tens of milliseconds).
    guard = GuardedCall()
    for _ in range(5):
        assert await guard.wait(after(0.08), idle_s=0.25) == 7
    with pytest.raises(WorkerCallError) as caught:
        await guard.wait(never(), idle_s=0.25)
    assert caught.value.failure is CallFailure.TIMEOUT


@pytest.mark.asyncio
async def test_a_shorter_bound_after_a_longer_one_ends_in_its_own_time() -> None:
    guard = GuardedCall()
    assert await guard.wait(answer(), idle_s=30) == 42
    started = asyncio.get_running_loop().time()
    with pytest.raises(WorkerCallError):
        await guard.wait(never(), idle_s=0.05)
    assert asyncio.get_running_loop().time() - started < 5


@pytest.mark.asyncio
async def test_a_timed_out_wait_leaves_the_task_uncancelled() -> None:
    guard = GuardedCall()
    with pytest.raises(WorkerCallError):
        await guard.wait(never(), idle_s=0.02)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.05)  # not cancelled by a leftover request
    guard.close()
    assert await guard.wait(after(0.01), idle_s=1) == 7  # a closed guard's waits still work


@pytest.mark.asyncio
async def test_a_wait_with_no_bound_outlives_an_earlier_bound() -> None:
    # Unbounded until the first token: a timer left by an earlier bounded wait must not
    # end it.
    guard = GuardedCall()
    assert await guard.wait(answer(), idle_s=0.02) == 42
    assert await guard.wait(after(0.1)) == 7
