"""Token-bucket maths, pure: the in-memory limiter runs it, the Redis script mirrors it.

Each limit is a bucket holding up to a minute's allowance (`per_minute`) and refilled
at `per_minute / 60` per second. A request takes its cost from every bucket of its
principal at once, or from none:

    level = min(per_minute, level + elapsed_s × per_minute / 60)
    all levels ≥ min(cost, per_minute) ──► take: level −= cost (may go below 0)
    otherwise                          ──► refuse, wait_s = longest (need − level) / rate

A request costing more than a minute's allowance waits for a full bucket and leaves it
in debt, so the average rate still holds and no request waits forever.

A taken request may also lease more (`Amount.lease`, router/auth/lease.py): after its
cost, up to that much of what is left, never into debt, is handed to the replica that
asked, to spend without asking again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from triskel.router.auth.errors import LimitName

SECONDS_PER_MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class Amount:
    """What one request takes from one bucket."""

    limit: LimitName
    per_minute: int
    cost: float
    lease: float = 0.0
    """Also taken if the bucket has it after `cost` (only part of it if less), for the
    replica to hold; never taken into debt, never a reason to refuse."""

    @property
    def refill_per_s(self) -> float:
        return self.per_minute / SECONDS_PER_MINUTE

    @property
    def needed(self) -> float:
        return min(self.cost, float(self.per_minute))


@dataclass(frozen=True, slots=True)
class Verdict:
    """Taken, with what was leased besides; or refused with the bucket that ran dry and
    the wait until it refills."""

    allowed: bool
    limit: LimitName | None = None
    wait_s: float = 0.0
    leased: Mapping[LimitName, float] = field(default_factory=dict)


ALLOWED = Verdict(True)


@dataclass(frozen=True, slots=True)
class BucketState:
    """Levels by limit name, as of `at_s`; a limit not yet seen is a full bucket."""

    levels: Mapping[str, float]
    at_s: float


def take(
    state: BucketState | None, now_s: float, amounts: Sequence[Amount]
) -> tuple[BucketState | None, Verdict]:
    """The state after one request's `amounts` are taken (and what they lease), and the
    verdict. A refused request leaves the state as it was (its refill is computed again
    next time) and leases nothing."""
    at_s = now_s if state is None else state.at_s
    elapsed_s = max(0.0, now_s - at_s)
    levels: dict[str, float] = {}
    refused = ALLOWED
    for amount in amounts:
        stored = None if state is None else state.levels.get(amount.limit)
        full = float(amount.per_minute)
        level = full if stored is None else min(full, stored + elapsed_s * amount.refill_per_s)
        levels[amount.limit] = level
        if amount.cost > 0 and level < amount.needed:  # a bare lease is never refused
            wait_s = (amount.needed - level) / amount.refill_per_s
            if wait_s > refused.wait_s:
                refused = Verdict(False, amount.limit, wait_s)
    if not refused.allowed:
        return state, refused
    leased: dict[LimitName, float] = {}
    for amount in amounts:
        level = levels[amount.limit] - amount.cost
        granted = min(amount.lease, max(0.0, level))
        if granted > 0:
            leased[amount.limit] = granted
        levels[amount.limit] = level - granted
    return BucketState(levels, now_s), Verdict(True, leased=leased) if leased else ALLOWED


def seconds_to_full(state: BucketState, amounts: Sequence[Amount]) -> float:
    """How long until every bucket is full again: after that the state may be forgotten."""
    return max(
        (
            (amount.per_minute - state.levels.get(amount.limit, amount.per_minute))
            / amount.refill_per_s
            for amount in amounts
        ),
        default=0.0,
    )
