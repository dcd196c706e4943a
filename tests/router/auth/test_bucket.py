"""Token-bucket maths: refill, all-or-nothing takes, the wait, debt for large requests."""

from __future__ import annotations

import pytest

from triskel.router.auth.bucket import (
    ALLOWED,
    Amount,
    BucketState,
    Verdict,
    seconds_to_full,
    take,
)

REQUESTS_60 = Amount("requests", 60, 1)  # one request per second refills


def assert_refused(verdict: Verdict, limit: str, wait_s: float) -> None:
    assert not verdict.allowed and verdict.limit == limit
    assert verdict.wait_s == pytest.approx(wait_s)


def test_a_new_bucket_is_full() -> None:
    state, verdict = take(None, 100.0, [REQUESTS_60])
    assert verdict == ALLOWED
    assert state == BucketState({"requests": 59.0}, 100.0)


def test_an_empty_bucket_refuses_with_the_time_to_refill_one() -> None:
    state = BucketState({"requests": 0.25}, 100.0)
    after, verdict = take(state, 100.0, [REQUESTS_60])
    # 0.75 of a request missing at 1 per second.
    assert_refused(verdict, "requests", 0.75)
    assert after is state  # a refusal takes nothing


@pytest.mark.parametrize(
    ("level", "elapsed_s", "expected_level"),
    [
        (0.0, 10.0, 9.0),  # 10 s refill 10 requests; one taken
        (50.0, 30.0, 59.0),  # capped at a minute's allowance (60), then one taken
        (10.0, -5.0, 9.0),  # a clock step backwards refills nothing
    ],
)
def test_refill_is_linear_and_capped(level: float, elapsed_s: float, expected_level: float) -> None:
    state = BucketState({"requests": level}, 100.0)
    after, verdict = take(state, 100.0 + elapsed_s, [REQUESTS_60])
    assert verdict.allowed and after is not None
    assert after.levels["requests"] == pytest.approx(expected_level)


def test_all_limits_or_none_and_the_longest_wait_is_told() -> None:
    tokens = Amount("tokens", 600, 200)  # 10 tokens per second
    state = BucketState({"requests": 0.5, "tokens": 100.0}, 0.0)
    after, verdict = take(state, 0.0, [REQUESTS_60, tokens])
    # requests: 0.5 missing → 0.5 s; tokens: 100 missing → 10 s. The longer one wins.
    assert_refused(verdict, "tokens", 10.0)
    assert after is state  # the request bucket kept its half token


def test_a_request_larger_than_a_minute_waits_for_a_full_bucket_then_leaves_debt() -> None:
    huge = Amount("tokens", 600, 1500)
    state = BucketState({"tokens": 300.0}, 0.0)
    _, verdict = take(state, 0.0, [huge])
    assert_refused(verdict, "tokens", 30.0)  # 300 to a full 600
    after, verdict = take(state, 30.0, [huge])
    assert verdict.allowed and after is not None
    assert after.levels["tokens"] == pytest.approx(-900.0)
    # The debt is paid back at the refill rate before anything else passes: 150 s.
    assert seconds_to_full(after, [huge]) == pytest.approx(150.0)
    _, verdict = take(after, 31.0, [Amount("tokens", 600, 1)])
    assert not verdict.allowed


def test_a_limit_added_later_starts_full() -> None:
    state = BucketState({"requests": 0.0}, 0.0)
    after, verdict = take(state, 60.0, [REQUESTS_60, Amount("tokens", 100, 100)])
    assert verdict.allowed and after is not None
    assert after.levels == {"requests": pytest.approx(59.0), "tokens": pytest.approx(0.0)}


@pytest.mark.parametrize(
    ("level", "amount", "expected_leased", "expected_level"),
    [
        # After the cost, the whole lease fits: 10 - 1 - 5 left.
        (10.0, Amount("requests", 60, 1, lease=5), {"requests": 5.0}, 4.0),
        # Only 2 left after the cost: the lease is cut to what there is.
        (3.0, Amount("requests", 60, 1, lease=5), {"requests": 2.0}, 0.0),
        # A request taken into debt leases nothing.
        (600.0, Amount("tokens", 600, 1500, lease=50), {}, -900.0),
        # A bare lease (no cost) takes what there is.
        (4.5, Amount("requests", 60, 0, lease=6), {"requests": 4.5}, 0.0),
    ],
)
def test_a_lease_takes_what_is_left_after_the_cost_never_into_debt(
    level: float, amount: Amount, expected_leased: dict[str, float], expected_level: float
) -> None:
    after, verdict = take(BucketState({amount.limit: level}, 0.0), 0.0, [amount])
    assert verdict.allowed and after is not None
    assert verdict.leased == pytest.approx(expected_leased)
    assert after.levels[amount.limit] == pytest.approx(expected_level)


def test_a_bare_lease_on_a_bucket_in_debt_is_not_refused_and_leases_nothing() -> None:
    state = BucketState({"tokens": -100.0}, 0.0)
    after, verdict = take(state, 0.0, [Amount("tokens", 600, 0, lease=50)])
    assert verdict == ALLOWED and verdict.leased == {}
    assert after is not None and after.levels["tokens"] == pytest.approx(-100.0)


def test_a_refused_request_leases_nothing() -> None:
    state = BucketState({"requests": 0.5}, 0.0)
    after, verdict = take(state, 0.0, [Amount("requests", 60, 1, lease=5)])
    assert not verdict.allowed and verdict.leased == {}
    assert after is state
