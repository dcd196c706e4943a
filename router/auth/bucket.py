"""Token-bucket maths, pure: the in-memory limiter runs it, the Redis script mirrors it.

Each limit is a bucket holding up to a minute's allowance (`per_minute`) and refilled
at `per_minute / 60` per second. A request takes its cost from every bucket of its
principal at once, or from none:

    level = min(per_minute, level + elapsed_s × per_minute / 60)
    all levels ≥ min(cost, per_minute) ──► take: level −= cost (may go below 0)
    otherwise                          ──► refuse, wait_s = longest (need − level) / rate

A request costing more than a minute's allowance waits for a full bucket and leaves it
in debt, so the average rate still holds and no request waits forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from triskel.router.auth.errors import LimitName

SECONDS_PER_MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class Amount:
    """What one request takes from one bucket."""

    limit: LimitName
    per_minute: int
    cost: float

    @property
    def refill_per_s(self) -> float:
        return self.per_minute / SECONDS_PER_MINUTE

    @property
    def needed(self) -> float:
        return min(self.cost, float(self.per_minute))


@dataclass(frozen=True, slots=True)
class Verdict:
    """Taken, or refused with the bucket that ran dry and the wait until it refills."""

    allowed: bool
    limit: LimitName | None = None
    wait_s: float = 0.0


ALLOWED = Verdict(True)


@dataclass(frozen=True, slots=True)
class BucketState:
    """Levels by limit name, as of `at_s`; a limit not yet seen is a full bucket."""

    levels: Mapping[str, float]
    at_s: float


def take(
    state: BucketState | None, now_s: float, amounts: Sequence[Amount]
) -> tuple[BucketState | None, Verdict]:
    """The state after one request's `amounts` are taken, and the verdict. A refused
    request leaves the state as it was (its refill is computed again next time)."""
    at_s = now_s if state is None else state.at_s
    elapsed_s = max(0.0, now_s - at_s)
    levels: dict[str, float] = {}
    refused = ALLOWED
    for amount in amounts:
        stored = None if state is None else state.levels.get(amount.limit)
        full = float(amount.per_minute)
        level = full if stored is None else min(full, stored + elapsed_s * amount.refill_per_s)
        levels[amount.limit] = level
        if level < amount.needed:
            wait_s = (amount.needed - level) / amount.refill_per_s
            if wait_s > refused.wait_s:
                refused = Verdict(False, amount.limit, wait_s)
    if not refused.allowed:
        return state, refused
    for amount in amounts:
        levels[amount.limit] -= amount.cost
    return BucketState(levels, now_s), ALLOWED


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
