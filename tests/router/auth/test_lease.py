"""What a request does with its replica's leased slices: spend, ask, wait, top up."""

from __future__ import annotations

import pytest

from triskel.router.auth.bucket import Amount
from triskel.router.auth.lease import (
    LeasePlan,
    is_leased,
    plan_take,
    slice_size,
)

FRACTION = 0.01
# 600 a minute: a slice is 6 requests, topped up below 3.
REQUESTS = Amount("requests", 600, 1)
# 100k tokens a minute: a slice is 1000 tokens.
TOKENS = Amount("tokens", 100_000, 200)


def test_the_slice_is_a_share_of_the_minute() -> None:
    assert slice_size(600, FRACTION) == pytest.approx(6.0)
    assert slice_size(600, 0.0) == 0.0


@pytest.mark.parametrize(
    ("amount", "fraction", "expected"),
    [
        (REQUESTS, FRACTION, True),  # 6 requests a slice
        (Amount("requests", 200, 1), FRACTION, True),  # 2 a slice: just worth it
        (Amount("requests", 199, 1), FRACTION, False),  # 1.99: one request would spend it
        (Amount("requests", 4, 1), FRACTION, False),  # small limits stay exact
        (Amount("tokens", 100_000, 600), FRACTION, False),  # 1000 < 2 x 600
        (REQUESTS, 0.0, False),  # leases off
    ],
)
def test_a_limit_is_leased_when_a_slice_covers_two_requests(
    amount: Amount, fraction: float, expected: bool
) -> None:
    assert is_leased(amount, fraction) is expected


def test_nothing_held_the_request_waits_for_its_cost_and_a_slice() -> None:
    plan = plan_take({}, [REQUESTS], FRACTION, may_lease=True)
    assert plan == LeasePlan({}, (Amount("requests", 600, 1, lease=6.0),), must_wait=True)


def test_enough_held_is_spent_here_without_asking() -> None:
    plan = plan_take({"requests": 5.0}, [REQUESTS], FRACTION, may_lease=True)
    # 4 left, not under half a slice (3): nothing to ask.
    assert plan == LeasePlan({"requests": 1.0}, (), must_wait=False)


def test_held_running_low_is_topped_up_in_the_background() -> None:
    plan = plan_take({"requests": 3.5}, [REQUESTS], FRACTION, may_lease=True)
    # 2.5 left, under 3: lease back up to the slice (6 - 2.5), without the request waiting.
    assert plan == LeasePlan(
        {"requests": 1.0}, (Amount("requests", 600, 0.0, lease=3.5),), must_wait=False
    )


def test_no_second_lease_while_one_is_on_its_way() -> None:
    plan = plan_take({"requests": 3.5}, [REQUESTS], FRACTION, may_lease=False)
    assert plan == LeasePlan({"requests": 1.0}, (), must_wait=False)
    plan = plan_take({}, [REQUESTS], FRACTION, may_lease=False)
    # Nothing held: the request still asks for its cost, exactly, and no more.
    assert plan == LeasePlan({}, (Amount("requests", 600, 1.0),), must_wait=True)


def test_part_held_the_request_waits_for_the_shortfall_only() -> None:
    plan = plan_take({"tokens": 150.0}, [TOKENS], FRACTION, may_lease=True)
    # 50 tokens short; nothing left after, so the slice (1000) is leased in the same call.
    assert plan == LeasePlan(
        {"tokens": 150.0}, (Amount("tokens", 100_000, 50.0, lease=1000.0),), must_wait=True
    )


def test_an_unleased_limit_asks_every_time_beside_a_leased_one() -> None:
    small = Amount("requests", 4, 1)
    plan = plan_take({"tokens": 900.0}, [small, TOKENS], FRACTION, may_lease=True)
    # The requests limit is exact (its slice is 0.04): the request waits for it; tokens
    # are spent from the slice (700 left: no top-up, not under 500).
    assert plan == LeasePlan({"tokens": 200.0}, (Amount("requests", 4, 1.0),), must_wait=True)
