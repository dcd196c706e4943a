"""A worker's silence counts only the time the router itself was running to notice it."""

from __future__ import annotations

import pytest

from triskel.router.staleness import Staleness


def silence_after(events: list[tuple[str, float]], max_step_s: float = 0.25) -> float:
    """Feeds ("heard" | "check", time) events in order; the silence after the last."""
    staleness = Staleness(max_step_s=max_step_s)
    for kind, at_s in events:
        if kind == "heard":
            staleness.heard(at_s)
        else:
            staleness.check(at_s)
    return staleness.silent_s


def checks(start_s: float, end_s: float, every_s: float = 0.1) -> list[tuple[str, float]]:
    count = round((end_s - start_s) / every_s)
    return [("check", start_s + every_s * (i + 1)) for i in range(count)]


@pytest.mark.parametrize(
    ("events", "expected_s"),
    [
        # Reports every 50 ms between checks: never silent.
        ([("heard", 0.0), ("check", 0.1), ("heard", 0.15), ("check", 0.2)], 0.05),
        # Frozen at 1 s, checked on time until 6 s: 5 s of silence, all of it counted.
        ([("heard", 1.0), *checks(1.0, 6.0)], 5.0),
        # The router stalled 10 s with nothing checked: the one late check adds max_step_s.
        ([("heard", 1.0), ("check", 11.0)], 0.25),
        # ... and the report queued during the stall, read right after it, resets it.
        ([("heard", 1.0), ("check", 11.0), ("heard", 11.01)], 0.0),
        # A worker heard again after being silent starts from nothing.
        ([("heard", 0.0), *checks(0.0, 8.0), ("heard", 8.05), ("check", 8.1)], 0.05),
        # Checks before any report count from the first check (the watch's start).
        (checks(0.0, 2.0), 1.9),
        # A clock that goes backwards (it should not) adds nothing.
        ([("heard", 5.0), ("check", 4.0)], 0.0),
    ],
)
def test_silence_is_the_time_the_router_ran_without_a_report(
    events: list[tuple[str, float]], expected_s: float
) -> None:
    assert silence_after(events) == pytest.approx(expected_s)


def test_a_stalled_router_needs_many_late_checks_to_call_a_worker_silent() -> None:
    # Five checks each 2 s late (a router starved of CPU, not reading its streams):
    # 5 × 0.25 s = 1.25 s of silence, where the clock says 10 s, under a 5 s bound.
    events = [("heard", 0.0), *checks(0.0, 10.0, every_s=2.0)]
    assert silence_after(events) == pytest.approx(1.25)


def test_check_returns_the_silence_so_far() -> None:
    staleness = Staleness()
    staleness.heard(0.0)
    assert staleness.check(0.1) == pytest.approx(0.1)
    assert staleness.check(0.3) == pytest.approx(0.3)
