"""RedisGuard: deadlines, fallbacks, backoff and recovery, with scripted calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from triskel.router.state import StateConfig
from triskel.router.state.guard import RedisGuard

CONFIG = StateConfig(call_timeout_s=0.05, backoff_initial_s=1.0, backoff_max_s=4.0)


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


class ScriptedRedis:
    """Fails while `is_down`; counts the calls that reached it."""

    def __init__(self) -> None:
        self.is_down = False
        self.num_calls = 0

    async def get(self) -> str:
        self.num_calls += 1
        if self.is_down:
            raise RedisConnectionError("Connection refused")
        return "from-redis"


def fallback() -> str:
    return "from-memory"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def errors() -> list[str]:
    return []


@pytest.fixture
def recoveries() -> list[None]:
    return []


@pytest.fixture
def guard(clock: FakeClock, errors: list[str], recoveries: list[None]) -> RedisGuard:
    return RedisGuard(CONFIG, errors.append, lambda: recoveries.append(None), clock)


@pytest.mark.asyncio
async def test_healthy_redis_answers(guard: RedisGuard, errors: list[str]) -> None:
    redis = ScriptedRedis()
    assert await guard.run("op", redis.get, fallback) == "from-redis"
    assert errors == []
    assert not guard.is_out


@pytest.mark.asyncio
async def test_failure_falls_back_and_backs_off(
    guard: RedisGuard, clock: FakeClock, errors: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    redis = ScriptedRedis()
    redis.is_down = True
    with caplog.at_level(logging.WARNING, logger="triskel.router.state.backoff"):
        assert await guard.run("load.totals", redis.get, fallback) == "from-memory"
        # Within the 1 s backoff nothing reaches Redis and nothing more is counted.
        clock.now_s = 0.9
        assert await guard.run("load.totals", redis.get, fallback) == "from-memory"
    assert redis.num_calls == 1
    assert errors == ["load.totals"]
    assert guard.is_out
    assert len(caplog.records) == 1  # one warning per outage, not per call
    assert "load.totals" in caplog.records[0].getMessage()


@pytest.mark.asyncio
async def test_backoff_doubles_up_to_its_cap_while_retries_fail(
    guard: RedisGuard, clock: FakeClock
) -> None:
    redis = ScriptedRedis()
    redis.is_down = True
    await guard.run("op", redis.get, fallback)  # outage starts: retry after 1 s
    # Each failed retry doubles the wait: 2 s, then 4 s, then the 4 s cap again.
    for retry_at_s, next_backoff_s in [(1.0, 2.0), (3.0, 4.0), (7.0, 4.0)]:
        clock.now_s = retry_at_s
        await guard.run("op", redis.get, fallback)
        clock.now_s = retry_at_s + next_backoff_s - 0.01
        num_calls = redis.num_calls
        await guard.run("op", redis.get, fallback)
        assert redis.num_calls == num_calls, f"tried Redis before {retry_at_s + next_backoff_s}"
    assert redis.num_calls == 4


@pytest.mark.asyncio
async def test_calls_in_flight_when_redis_fails_do_not_stretch_the_backoff(
    guard: RedisGuard, clock: FakeClock
) -> None:
    redis = ScriptedRedis()
    redis.is_down = True
    # Ten calls fail together; the outage still retries after the initial 1 s.
    await asyncio.gather(*(guard.run("op", redis.get, fallback) for _ in range(10)))
    clock.now_s = 1.0
    redis.is_down = False
    assert await guard.run("op", redis.get, fallback) == "from-redis"


@pytest.mark.asyncio
async def test_recovery_after_the_backoff(
    guard: RedisGuard, clock: FakeClock, errors: list[str], recoveries: list[None]
) -> None:
    redis = ScriptedRedis()
    redis.is_down = True
    await guard.run("op", redis.get, fallback)
    redis.is_down = False
    clock.now_s = 1.0
    assert await guard.run("op", redis.get, fallback) == "from-redis"
    assert not guard.is_out
    assert recoveries == [None]
    # A later outage starts over with the initial backoff.
    redis.is_down = True
    await guard.run("op", redis.get, fallback)
    clock.now_s = 2.0
    redis.is_down = False
    assert await guard.run("op", redis.get, fallback) == "from-redis"
    assert errors == ["op", "op"]


@pytest.mark.asyncio
async def test_a_hung_call_is_cut_off_by_the_deadline(guard: RedisGuard, errors: list[str]) -> None:
    never = asyncio.Event()

    async def hangs() -> str:
        await never.wait()
        return "unreachable"

    assert await guard.run("op", hangs, fallback) == "from-memory"
    assert errors == ["op"]


@pytest.mark.asyncio
async def test_bugs_are_not_mistaken_for_outages(guard: RedisGuard, errors: list[str]) -> None:
    async def buggy() -> str:
        raise KeyError("not a Redis failure")

    with pytest.raises(KeyError):
        await guard.run("op", buggy, fallback)
    assert errors == []


@pytest.mark.parametrize("outcome", ["returns", "fails"])
@pytest.mark.asyncio
async def test_a_cancellation_the_call_swallowed_is_raised(errors: list[str], outcome: str) -> None:
    # A deadline far away: only the test's own cancellation may end the call.
    guard = RedisGuard(StateConfig(call_timeout_s=5.0), errors.append)
    started = asyncio.Event()

    async def swallowing_call() -> str:
        # What asyncio.wait_for inside redis-py can do on Python 3.11.
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        if outcome == "fails":
            raise RedisConnectionError("connection closed")
        return "from-redis"

    call = asyncio.create_task(guard.run("op", swallowing_call, fallback))
    await started.wait()
    call.cancel()
    await asyncio.wait([call], timeout=5.0)
    # Had `run` returned as if nothing happened, a loop around it would never end.
    assert call.cancelled()
