"""The outage schedule shared by the Redis guard and the cache store breaker."""

from __future__ import annotations

from triskel.router.state.backoff import OutageBackoff


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_an_outage_waits_doubling_up_to_the_bound_and_ends_on_a_success() -> None:
    clock = Clock()
    backoff = OutageBackoff("Redis", "serving from memory", 1.0, 4.0, clock)
    assert not backoff.should_skip() and not backoff.note_success()
    backoff.note_failure("get", TimeoutError())  # begins the outage: logged
    backoff.note_failure("get", TimeoutError())  # in flight when it began: same schedule
    assert backoff.should_skip()
    for retry_at_s, next_wait_s in [(1.0, 2.0), (3.0, 4.0), (7.0, 4.0)]:
        clock.now_s = retry_at_s
        assert not backoff.should_skip()  # the wait is over: try again
        backoff.note_failure("get", TimeoutError())
        clock.now_s = retry_at_s + next_wait_s - 0.01
        assert backoff.should_skip()
    clock.now_s = 11.0
    assert backoff.note_success()  # ends the outage: logged
    assert not backoff.is_out and not backoff.should_skip()
    backoff.note_failure("get", TimeoutError())  # a new outage starts from the first wait
    clock.now_s = 11.99
    assert backoff.should_skip()
    clock.now_s = 12.0
    assert not backoff.should_skip()
