"""Rate limiting one request against its principal's buckets, shared or local.

    SharedRateLimiter ── Redis healthy ──► RedisBuckets (every replica's requests)
                      └─ Redis failing ──► LocalRateLimiter (this replica's only),
                                           counted in triskel_redis_errors_total

Failing open to the local buckets, as gateways do: while Redis is out each replica
enforces the whole limit by itself, so a principal may get up to one limit per
replica; refusing everyone instead would turn a cache outage into an API outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from triskel.router.auth.bucket import Amount, BucketState, Verdict, take
from triskel.router.auth.redis_bucket import RedisBuckets
from triskel.router.state.guard import RedisGuard


class RateLimiter(Protocol):
    async def take(self, bucket: str, amounts: Sequence[Amount]) -> Verdict:
        """Takes `amounts` from `bucket`'s limits at once, or refuses with the wait."""
        ...

    async def aclose(self) -> None: ...


class LocalRateLimiter:
    """The buckets in this process; state per principal, bounded by the principals."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._states: dict[str, BucketState] = {}

    def take_now(self, bucket: str, amounts: Sequence[Amount]) -> Verdict:
        state, verdict = take(self._states.get(bucket), self._clock(), amounts)
        if state is not None:
            self._states[bucket] = state
        return verdict

    async def take(self, bucket: str, amounts: Sequence[Amount]) -> Verdict:
        return self.take_now(bucket, amounts)

    async def aclose(self) -> None:
        return None


class SharedRateLimiter:
    """The shared buckets, or this replica's while the guard reports Redis out."""

    def __init__(self, buckets: RedisBuckets, guard: RedisGuard, local: LocalRateLimiter) -> None:
        self._buckets = buckets
        self._guard = guard
        self._local = local

    async def take(self, bucket: str, amounts: Sequence[Amount]) -> Verdict:
        return await self._guard.run(
            "auth.rate_limit",
            lambda: self._buckets.take(bucket, amounts),
            lambda: self._local.take_now(bucket, amounts),
        )

    async def aclose(self) -> None:
        await self._buckets.aclose()
