"""Leased slices on replicas: requests served from the slice, top-ups before it runs out,
and across replicas no more admitted than one bucket holds.

The shared bucket is the in-memory one on a frozen clock (the same maths as Redis'
script, which test_redis_bucket checks), so what the replicas admit, hold and leave
in the bucket add up exactly; then two replicas over a real redis-server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from triskel.router.auth.bucket import Amount, Verdict
from triskel.router.auth.leasing import LeasingRateLimiter
from triskel.router.auth.limiter import LocalRateLimiter, SharedRateLimiter
from triskel.router.auth.redis_bucket import RedisBuckets
from triskel.router.state import StateConfig, connect_redis
from triskel.router.state.guard import RedisGuard

from support.redis_server import RedisServer, private_redis  # noqa: F401

FRACTION = 0.01
PER_MINUTE = 600  # a slice: 6 requests
REQUEST = [Amount("requests", PER_MINUTE, 1)]


class CountedBucket:
    """The shared bucket on a frozen clock, counting the calls that reach it."""

    def __init__(self) -> None:
        self.local = LocalRateLimiter(clock=lambda: 0.0)
        self.num_calls = 0

    async def take(self, bucket: str, amounts: Sequence[Amount]) -> Verdict:
        self.num_calls += 1
        await asyncio.sleep(0)  # a round trip's yield: other requests run meanwhile
        return await self.local.take(bucket, amounts)

    def drain(self, bucket: str) -> float:
        """What is left in the bucket, taken out by a bare lease of everything."""
        verdict = self.local.take_now(bucket, [Amount("requests", PER_MINUTE, 0, lease=1e9)])
        return verdict.leased.get("requests", 0.0)

    async def aclose(self) -> None:
        return None


@pytest.mark.asyncio
async def test_after_the_first_request_none_waits_while_top_ups_land_in_time() -> None:
    shared = CountedBucket()
    replica = LeasingRateLimiter(shared, FRACTION)
    assert (await replica.take("k", REQUEST)).allowed
    assert replica.num_waited == 1  # nothing held yet: its cost and a slice in one call
    for _ in range(30):
        await replica.settled()
        assert (await replica.take("k", REQUEST)).allowed
        assert replica.held("k")["requests"] <= 6.0
    assert replica.num_waited == 1
    # From a full slice (6) the fourth request leaves 2, under half a slice: a top-up
    # back to 6 every 4 requests, 7 in 30, after the first call.
    assert shared.num_calls == 1 + 7
    await replica.aclose()


@pytest.mark.asyncio
async def test_replicas_admit_no_more_than_the_bucket_and_refuse_when_it_is_spent() -> None:
    shared = CountedBucket()
    replicas = [LeasingRateLimiter(shared, FRACTION) for _ in range(2)]
    admitted, refusals = 0, list[Verdict]()
    for _ in range(PER_MINUTE):  # until both replicas refuse in turn
        refusals = []
        for replica in replicas:
            verdict = await replica.take("k", REQUEST)
            admitted += verdict.allowed
            if not verdict.allowed:
                refusals.append(verdict)
        await asyncio.gather(*(replica.settled() for replica in replicas))
        if len(refusals) == len(replicas):
            break
    assert len(refusals) == len(replicas)
    held = sum(replica.held("k").get("requests", 0.0) for replica in replicas)
    # Every token is admitted, held by a replica or still in the bucket: none made up.
    assert admitted + held + shared.drain("k") == pytest.approx(PER_MINUTE)
    assert admitted <= PER_MINUTE
    # A refusing replica holds less than one request: at most that is stranded.
    assert held < len(replicas)
    for refused in refusals:
        assert refused.limit == "requests" and refused.wait_s > 0


@pytest.mark.asyncio
async def test_concurrent_requests_never_hold_more_than_a_slice() -> None:
    shared = CountedBucket()
    replica = LeasingRateLimiter(shared, FRACTION)
    for _ in range(5):
        verdicts = await asyncio.gather(*(replica.take("k", REQUEST) for _ in range(40)))
        assert all(verdict.allowed for verdict in verdicts)
        await replica.settled()
        assert replica.held("k")["requests"] <= 6.0
    admitted = 5 * 40
    held = replica.held("k")["requests"]
    assert admitted + held + shared.drain("k") == pytest.approx(PER_MINUTE)


@pytest.mark.asyncio
async def test_a_refused_request_gives_back_what_it_took_from_the_slice() -> None:
    shared = CountedBucket()
    replica = LeasingRateLimiter(shared, FRACTION)
    tokens = [Amount("tokens", 100_000, 200)]  # a slice: 1000 tokens
    assert (await replica.take("k", tokens)).allowed  # 200 and a slice of 1000
    await replica.settled()
    # Empty the shared bucket from another replica's side.
    drained = await shared.local.take("k", [Amount("tokens", 100_000, 0, lease=1e9)])
    assert drained.leased
    huge = [Amount("tokens", 100_000, 5000)]
    refused = await replica.take("k", huge)
    assert not refused.allowed and refused.limit == "tokens"
    assert replica.held("k")["tokens"] == pytest.approx(1000.0)


@pytest.mark.asyncio
async def test_two_replicas_over_a_real_redis_share_one_limit(
    private_redis: RedisServer,  # noqa: F811
) -> None:
    config = StateConfig(call_timeout_s=2.0)
    errors: list[str] = []

    def replica() -> LeasingRateLimiter:
        shared = SharedRateLimiter(
            RedisBuckets(connect_redis(private_redis.url, config)),
            RedisGuard(config, errors.append),
            LocalRateLimiter(),
        )
        return LeasingRateLimiter(shared, 0.1)

    # 20 a minute at a tenth: slices of 2 requests; one refills in 3 s, longer than
    # this test's requests take, so the count below is the bucket's.
    name, amounts = f"test-{uuid.uuid4().hex[:8]}", [Amount("requests", 20, 1)]
    first, second = replica(), replica()
    try:
        admitted, refusals = 0, list[Verdict]()
        for _ in range(20):  # until both replicas refuse in turn
            refusals = []
            for leasing in (first, second):
                verdict = await leasing.take(name, amounts)
                admitted += verdict.allowed
                if not verdict.allowed:
                    refusals.append(verdict)
                await leasing.settled()
            if len(refusals) == 2:
                break
        assert len(refusals) == 2
        # Each refusing replica held less than one request: at most two stranded.
        assert 18 <= admitted <= 20
        assert first.num_waited + second.num_waited < admitted  # some from the slices
        for refused in refusals:  # one request refills in 3 s
            assert refused.limit == "requests" and 0 < refused.wait_s <= 3.0
        assert errors == []
    finally:
        await first.aclose()
        await second.aclose()
