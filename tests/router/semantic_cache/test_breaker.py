"""The store breaker: bounded calls, and no calls at all during a backoff."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from triskel.router.semantic_cache.breaker import StoreBreaker, StoreUnavailable


class FakeMonotonic:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


class FlakyCall:
    """Fails with `error` while `error` is set; counts its calls."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.num_calls = 0

    async def __call__(self) -> str:
        self.num_calls += 1
        if self.error is not None:
            raise self.error
        return "ok"


def breaker(clock: FakeMonotonic) -> StoreBreaker:
    return StoreBreaker(call_timeout_s=0.05, backoff_initial_s=1.0, backoff_max_s=4.0, clock=clock)


@pytest.mark.asyncio
async def test_opens_on_a_failure_skips_calls_in_backoff_and_closes_on_success() -> None:
    clock, call = FakeMonotonic(), FlakyCall()
    guard = breaker(clock)
    assert await guard.call("get", call) == "ok"
    call.error = RedisConnectionError("refused")
    with pytest.raises(StoreUnavailable) as failed:
        await guard.call("get", call)
    assert failed.value.is_failure and guard.is_open
    # Within the backoff: no call is made at all.
    with pytest.raises(StoreUnavailable) as skipped:
        await guard.call("get", call)
    assert not skipped.value.is_failure and call.num_calls == 2
    clock.now_s += 1.0  # the backoff has passed: the next call tries again
    call.error = None
    assert await guard.call("get", call) == "ok"
    assert not guard.is_open and call.num_calls == 3


@pytest.mark.asyncio
async def test_the_backoff_doubles_while_retries_fail_up_to_its_bound() -> None:
    clock, call = FakeMonotonic(), FlakyCall()
    guard = breaker(clock)
    call.error = OSError("network unreachable")
    for backoff_s in (1.0, 2.0, 4.0, 4.0):
        with pytest.raises(StoreUnavailable):
            await guard.call("get", call)  # fails; the next retry is `backoff_s` away
        clock.now_s += backoff_s - 0.01
        with pytest.raises(StoreUnavailable) as skipped:
            await guard.call("get", call)
        assert not skipped.value.is_failure
        clock.now_s += 0.01


@pytest.mark.asyncio
async def test_a_call_over_its_deadline_is_a_failure() -> None:
    async def hangs() -> str:
        await asyncio.sleep(10)
        return "late"

    guard = breaker(FakeMonotonic())
    with pytest.raises(StoreUnavailable) as failed:
        await guard.call("get", hangs)
    assert failed.value.is_failure


@pytest.mark.asyncio
async def test_a_longer_deadline_may_be_given_per_call() -> None:
    async def slow() -> str:
        await asyncio.sleep(0.1)
        return "done"

    assert await breaker(FakeMonotonic()).call("load", slow, timeout_s=5.0) == "done"


@pytest.mark.asyncio
async def test_other_errors_are_bugs_and_propagate() -> None:
    call = FlakyCall()
    call.error = KeyError("bug")
    guard = breaker(FakeMonotonic())
    with pytest.raises(KeyError):
        await guard.call("get", call)
    assert not guard.is_open
