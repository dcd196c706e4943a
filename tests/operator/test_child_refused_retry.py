"""A pool whose child the API server refused is reconciled again with a backoff: soon at
first (the user's fix is picked up within seconds: kopf keeps a delayed handler asleep
through a spec change), then no more often than every 30 s."""

from __future__ import annotations

from triskel.operator.handlers.workerpool import child_refused_retry_s


def test_the_delay_starts_at_one_second_and_doubles() -> None:
    assert [child_refused_retry_s(n) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_the_delay_stops_growing_at_thirty_seconds() -> None:
    assert child_refused_retry_s(5) == 30.0
    assert child_refused_retry_s(1_000) == 30.0  # no float overflow after days of refusals
