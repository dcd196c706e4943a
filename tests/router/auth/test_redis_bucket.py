"""The Lua token bucket against a real redis-server: it mirrors the pure maths, leases
included, and two clients (two router replicas) draw from one bucket."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from triskel.router.auth.bucket import Amount, BucketState, take
from triskel.router.auth.redis_bucket import KEY_PREFIX, RedisBuckets
from triskel.router.state import StateConfig, connect_redis

from support.redis_server import RedisServer, redis_server  # noqa: F401

CONFIG = StateConfig(call_timeout_s=2.0)


@pytest_asyncio.fixture
async def clients(redis_server: RedisServer) -> AsyncIterator[tuple[Redis, Redis]]:  # noqa: F811
    first = connect_redis(redis_server.url, CONFIG)
    second = connect_redis(redis_server.url, CONFIG)
    yield first, second
    await first.aclose()
    await second.aclose()


def bucket() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def redis_now(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return seconds + micros / 1_000_000


@pytest.mark.parametrize(
    ("levels", "age_s", "amounts"),
    [
        # Refill over 10 s, then one taken.
        ({"requests": 0.0}, 10.0, [Amount("requests", 60, 1)]),
        # Empty: refused, with the wait.
        ({"requests": 0.2}, 0.0, [Amount("requests", 60, 1)]),
        # Two limits: the tokens bucket refuses, the requests bucket keeps its level.
        (
            {"requests": 5.0, "tokens": 10.0},
            0.0,
            [Amount("requests", 60, 1), Amount("tokens", 600, 100)],
        ),
        # Larger than a minute: a full bucket admits it into debt.
        ({"tokens": 600.0}, 0.0, [Amount("tokens", 600, 1500)]),
        # A limit missing from the hash starts full.
        ({"requests": 30.0}, 0.0, [Amount("requests", 60, 1), Amount("tokens", 600, 50)]),
        # A lease beside the cost, whole.
        ({"requests": 10.0}, 0.0, [Amount("requests", 60, 1, lease=5)]),
        # A lease cut to what is left after the cost.
        ({"requests": 3.0}, 0.0, [Amount("requests", 60, 1, lease=5)]),
        # A bare lease on a bucket in debt: not refused, nothing leased.
        ({"tokens": -100.0}, 0.0, [Amount("tokens", 600, 0, lease=50)]),
        # One limit's shortfall taken, the other's slice topped up.
        (
            {"requests": 5.0, "tokens": 300.0},
            0.0,
            [Amount("requests", 60, 1), Amount("tokens", 600, 0, lease=100)],
        ),
    ],
)
@pytest.mark.asyncio
async def test_the_script_mirrors_the_pure_maths(
    clients: tuple[Redis, Redis],
    levels: dict[str, float],
    age_s: float,
    amounts: list[Amount],
) -> None:
    redis, _ = clients
    name = bucket()
    at_s = await redis_now(redis) - age_s
    for field, value in {**levels, "at": at_s}.items():
        await redis.hset(KEY_PREFIX + name, field, value)
    verdict = await RedisBuckets(redis).take(name, amounts)
    now_s = await redis_now(redis)
    expected_state, expected = take(BucketState(levels, at_s), now_s, amounts)
    assert verdict.allowed == expected.allowed and verdict.limit == expected.limit
    # The script ran a few milliseconds before `now_s`: refill differs by about that.
    assert verdict.wait_s == pytest.approx(expected.wait_s, abs=0.1)
    assert verdict.leased.keys() == expected.leased.keys()
    for leased_limit, leased in expected.leased.items():
        assert verdict.leased[leased_limit] == pytest.approx(leased, abs=0.2)
    stored = await redis.hgetall(KEY_PREFIX + name)
    assert expected_state is not None
    for limit, level in expected_state.levels.items():
        if expected.allowed:
            assert float(stored[limit]) == pytest.approx(level, abs=0.2)
        else:  # a refusal writes nothing
            assert float(stored[limit]) == levels[limit]


@pytest.mark.asyncio
async def test_two_replicas_draw_from_one_bucket(clients: tuple[Redis, Redis]) -> None:
    first, second = (RedisBuckets(client) for client in clients)
    name, amounts = bucket(), [Amount("requests", 3, 1)]
    results = [
        (await first.take(name, amounts)).allowed,
        (await second.take(name, amounts)).allowed,
        (await first.take(name, amounts)).allowed,
    ]
    assert results == [True, True, True]
    refused = await second.take(name, amounts)
    # 3 per minute: one request refills in 20 s (less the time since the last take).
    assert not refused.allowed and refused.limit == "requests"
    assert 19.0 < refused.wait_s <= 20.0
    assert not (await first.take(name, amounts)).allowed


@pytest.mark.asyncio
async def test_the_hash_expires_once_it_would_be_full_again(clients: tuple[Redis, Redis]) -> None:
    redis, _ = clients
    name = bucket()
    await RedisBuckets(redis).take(name, [Amount("tokens", 600, 1500)])
    # -900 tokens refill to 600 at 10 per second: 150 s, plus a second's margin.
    ttl_ms = await redis.pttl(KEY_PREFIX + name)
    assert 150_000 < ttl_ms <= 151_000
