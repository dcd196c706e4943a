"""Leased slices of the shared buckets: which requests need Redis, and what to lease. Pure.

Asking Redis on every request costs a loopback round trip (~0.2 ms) on the request's
path. Instead each replica holds, per principal and limit, a little of the shared
bucket, taken from it in advance, and spends that without asking:

    slice = fraction × per_minute            a replica holds at most one slice
    request:  held ≥ cost for every limit ──► spent here, no round trip
              otherwise                   ──► one call takes the shortfall (cost − held)
                                              exactly, as without leases: 429 if it lacks
    after either, held < slice / 2        ──► lease (slice − held) more, in the same call,
                                              or in the background: nobody waits for it

A lease is taken from the shared bucket by the same atomic script, so the tokens every
replica admits and holds never exceed what one exact bucket would have admitted: across
N replicas the limit is off by at most what they hold, N slices. Admissions over a
window may exceed an exact bucket's by the slices held when it began (leased earlier),
and a replica may be refused while the others hold up to N − 1 slices. A limit whose
slice would not cover two such requests is not leased (each request asks, exactly as
before): a lease spent by one request would save no round trip and only hold tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from triskel.router.auth.bucket import Amount
from triskel.router.auth.errors import LimitName

DEFAULT_LEASE_FRACTION = 0.01
MAX_LEASE_FRACTION = 0.1
# A slice must cover this many requests of the current cost to be worth holding.
MIN_REQUESTS_PER_SLICE = 2


def slice_size(per_minute: int, fraction: float) -> float:
    """The most one replica holds of a limit of `per_minute`."""
    return per_minute * fraction


def is_leased(amount: Amount, fraction: float) -> bool:
    return fraction > 0 and slice_size(amount.per_minute, fraction) >= (
        MIN_REQUESTS_PER_SLICE * amount.cost
    )


@dataclass(frozen=True, slots=True)
class LeasePlan:
    """What one request does with the slices its replica holds.

    `spent`: taken from the held slices now (given back if Redis refuses the request).
    `ask`: for Redis, the limits with a shortfall (as `cost`) or a top-up (as `lease`);
    empty when nothing is asked. `must_wait`: the request is admitted only on Redis' answer
    (some shortfall); otherwise `ask` only tops the slices up, in the background.
    """

    spent: Mapping[LimitName, float]
    ask: tuple[Amount, ...]
    must_wait: bool


def plan_take(
    held: Mapping[LimitName, float],
    amounts: Sequence[Amount],
    fraction: float,
    may_lease: bool,
) -> LeasePlan:
    """How a request costing `amounts` is taken, given what its replica `held`s.

    `may_lease` False (a lease for these buckets is already on its way): no top-up, so
    a replica never holds more than a slice per limit.
    """
    spent: dict[LimitName, float] = {}
    ask: list[Amount] = []
    must_wait = False
    for amount in amounts:
        have = held.get(amount.limit, 0.0)
        from_held = min(have, amount.cost)
        shortfall = amount.cost - from_held
        left = have - from_held
        slice_ = slice_size(amount.per_minute, fraction)
        top_up = 0.0
        if may_lease and is_leased(amount, fraction) and left < slice_ / 2:
            top_up = slice_ - left
        if from_held > 0:
            spent[amount.limit] = from_held
        must_wait = must_wait or shortfall > 0
        if shortfall > 0 or top_up > 0:
            ask.append(Amount(amount.limit, amount.per_minute, shortfall, lease=top_up))
    return LeasePlan(spent, tuple(ask), must_wait)
