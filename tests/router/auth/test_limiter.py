"""The shared limiter serves from this replica's buckets while Redis is out, and counts it."""

from __future__ import annotations

import uuid

import pytest

from triskel.router.auth.bucket import Amount
from triskel.router.auth.limiter import LocalRateLimiter, SharedRateLimiter
from triskel.router.auth.redis_bucket import RedisBuckets
from triskel.router.state import StateConfig, connect_redis
from triskel.router.state.guard import RedisGuard

from support.redis_server import RedisServer, private_redis  # noqa: F401

CONFIG = StateConfig(call_timeout_s=2.0)
TWO_PER_MINUTE = [Amount("requests", 2, 1)]


@pytest.mark.asyncio
async def test_local_buckets_refuse_past_the_limit() -> None:
    now = [0.0]
    limiter = LocalRateLimiter(clock=lambda: now[0])
    assert (await limiter.take("a", TWO_PER_MINUTE)).allowed
    assert (await limiter.take("a", TWO_PER_MINUTE)).allowed
    refused = await limiter.take("a", TWO_PER_MINUTE)
    assert not refused.allowed and refused.wait_s == pytest.approx(30.0)
    assert (await limiter.take("b", TWO_PER_MINUTE)).allowed  # buckets are per principal
    now[0] = 30.0
    assert (await limiter.take("a", TWO_PER_MINUTE)).allowed


@pytest.mark.asyncio
async def test_redis_down_falls_open_to_the_local_limit_and_counts_it(
    private_redis: RedisServer,  # noqa: F811
) -> None:
    errors: list[str] = []
    redis = connect_redis(private_redis.url, CONFIG)
    shared = SharedRateLimiter(
        RedisBuckets(redis), RedisGuard(CONFIG, errors.append), LocalRateLimiter()
    )
    name = f"test-{uuid.uuid4().hex[:8]}"
    try:
        assert (await shared.take(name, TWO_PER_MINUTE)).allowed
        assert (await shared.take(name, TWO_PER_MINUTE)).allowed
        assert not (await shared.take(name, TWO_PER_MINUTE)).allowed  # Redis' bucket
        assert errors == []
        private_redis.stop()
        # The local bucket is this replica's own, full: the limit holds per replica.
        assert (await shared.take(name, TWO_PER_MINUTE)).allowed
        assert (await shared.take(name, TWO_PER_MINUTE)).allowed
        assert not (await shared.take(name, TWO_PER_MINUTE)).allowed
        assert errors and set(errors) == {"auth.rate_limit"}
    finally:
        await shared.aclose()
