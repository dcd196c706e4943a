"""A replica's leased slices of the shared buckets, spent without a round trip.

    take ── held covers it ──► spent here ──(held < half a slice)──► top-up in the background
         └─ it does not ─────► shared.take(shortfall + top-up): the request waits for it

The maths (what to spend, what to ask, the bound on what replicas hold) is
router/auth/lease.py; this shell keeps the held amounts, one per principal and limit,
and at most one lease in flight per principal, so a replica never holds more than a
slice of a limit. Leases come through the same limiter as exact takes, so while Redis
is out they come from this replica's own buckets, as every take then does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from triskel.router.auth.bucket import ALLOWED, Amount, Verdict
from triskel.router.auth.errors import LimitName
from triskel.router.auth.lease import plan_take
from triskel.router.auth.limiter import RateLimiter

_log = logging.getLogger(__name__)


class LeasingRateLimiter:
    """A RateLimiter over `shared` that asks it only when the held slices run short."""

    def __init__(self, shared: RateLimiter, fraction: float) -> None:
        self._shared = shared
        self._fraction = fraction
        self._held: dict[str, dict[LimitName, float]] = {}
        self._leasing: set[str] = set()  # buckets with a lease on its way
        self._top_ups: set[asyncio.Task[None]] = set()
        self.num_waited = 0
        """Requests that waited for the shared buckets (the rest were served from held)."""

    def held(self, bucket: str) -> Mapping[LimitName, float]:
        return dict(self._held.get(bucket, {}))

    async def take(self, bucket: str, amounts: Sequence[Amount]) -> Verdict:
        held = self._held.setdefault(bucket, {})
        plan = plan_take(held, amounts, self._fraction, bucket not in self._leasing)
        _add(held, plan.spent, -1)
        if not plan.must_wait:
            if plan.ask:
                self._start_top_up(bucket, plan.ask)
            return ALLOWED
        self.num_waited += 1
        is_leasing = any(amount.lease > 0 for amount in plan.ask)
        if is_leasing:
            self._leasing.add(bucket)
        try:
            verdict = await self._shared.take(bucket, plan.ask)
        finally:
            if is_leasing:
                self._leasing.discard(bucket)
        if verdict.allowed:
            _add(held, verdict.leased, +1)
        else:
            _add(held, plan.spent, +1)  # a refused request spends nothing
        return ALLOWED if verdict.allowed else verdict

    async def settled(self) -> None:
        """Returns once the top-ups under way have landed (for tests and benchmarks)."""
        while self._top_ups:
            await asyncio.gather(*self._top_ups, return_exceptions=True)

    async def aclose(self) -> None:
        for task in self._top_ups:
            task.cancel()
        await asyncio.gather(*self._top_ups, return_exceptions=True)
        await self._shared.aclose()

    def _start_top_up(self, bucket: str, ask: Sequence[Amount]) -> None:
        self._leasing.add(bucket)
        task = asyncio.create_task(self._top_up(bucket, ask))
        self._top_ups.add(task)
        task.add_done_callback(self._top_ups.discard)

    async def _top_up(self, bucket: str, ask: Sequence[Amount]) -> None:
        try:
            verdict = await self._shared.take(bucket, ask)
            _add(self._held.setdefault(bucket, {}), verdict.leased, +1)
        except Exception:  # the request was served already; the next one asks again
            _log.exception("leasing a slice of rate-limit bucket %s failed", bucket)
        finally:
            self._leasing.discard(bucket)


def _add(held: dict[LimitName, float], amounts: Mapping[LimitName, float], sign: int) -> None:
    for limit, amount in amounts.items():
        held[limit] = held.get(limit, 0.0) + sign * amount
