"""The bounded per-worker hold of prefills and DualMap's rebalancing of it (pure)."""

from __future__ import annotations

import pytest

from triskel.common.profiles import load_profile
from triskel.router.scheduling.hold import PrefillHold, runner_up
from triskel.router.scheduling.plugins.dualmap.rebalance import QueuedRequest
from triskel.router.scheduling.types import ActiveLoad, Decision, Endpoint, ScoredEndpoint

PROFILE = load_profile("llama-3.1-8b-h100")  # 8,192 tokens a step


def endpoint(worker_id: str, queued_tokens: int = 0) -> Endpoint:
    return Endpoint(
        worker_id,
        PROFILE.model,
        16,
        active=ActiveLoad(num_requests=1, num_prefill_tokens=queued_tokens),
        profile=PROFILE,
    )


def request(
    request_id: str, here: str = "a", there: str = "b", tokens: int = 1000
) -> QueuedRequest:
    return QueuedRequest(request_id, here, (here, there), (tokens, tokens))


def test_a_worker_with_room_gets_its_prefill_at_once() -> None:
    hold = PrefillHold(8)
    # 8,191 tokens queued: less than one step's budget.
    assert not hold.offer(request("r1"), {"a": endpoint("a", 8191), "b": endpoint("b", 8191)})
    assert len(hold) == 0


def test_a_busy_workers_prefill_waits_until_it_has_room() -> None:
    hold = PrefillHold(8)
    busy = {"a": endpoint("a", 8192), "b": endpoint("b", 20_000)}
    assert hold.offer(request("r1"), busy)
    assert hold.ready(busy) == []
    freed = {"a": endpoint("a", 0), "b": endpoint("b", 20_000)}
    assert [r.request_id for r in hold.ready(freed)] == ["r1"]
    assert len(hold) == 0


def test_release_counts_what_it_sends() -> None:
    hold = PrefillHold(8)
    busy = {"a": endpoint("a", 9000), "b": endpoint("b", 40_000)}
    for n in range(3):
        assert hold.offer(request(f"r{n}", tokens=5000), busy)
    # Room again: r0 goes (0 queued), r1 too (5,000 < 8,192 queued with r0), and then the
    # worker is busy again (10,000 >= 8,192): r2 stays.
    freed = {"a": endpoint("a", 0), "b": endpoint("b", 40_000)}
    assert [r.request_id for r in hold.ready(freed)] == ["r0", "r1"]
    assert len(hold) == 1


def test_later_prefills_wait_behind_the_held_ones() -> None:
    hold = PrefillHold(8)
    busy = {"a": endpoint("a", 9000), "b": endpoint("b", 40_000)}
    assert hold.offer(request("r1"), busy)
    # The worker has room now, but r1 is still held: r2 queues behind it.
    assert hold.offer(request("r2"), {"a": endpoint("a", 0), "b": endpoint("b", 40_000)})
    assert len(hold) == 2


def test_the_hold_is_bounded_per_worker() -> None:
    hold = PrefillHold(2)
    busy = {"a": endpoint("a", 9000), "b": endpoint("b", 40_000)}
    assert hold.offer(request("r1"), busy)
    assert hold.offer(request("r2"), busy)
    assert not hold.offer(request("r3"), busy)  # sent: the hold is full
    assert len(hold) == 2


def test_a_hotspots_held_prefill_moves_to_its_other_candidate() -> None:
    hold = PrefillHold(8)
    # a has 80,000 tokens queued (~3.8 s), b one step's worth (~0.4 s): both busy.
    endpoints = {"a": endpoint("a", 80_000), "b": endpoint("b", 8192)}
    assert hold.offer(request("r1"), endpoints)
    assert hold.num_moves == 1
    assert hold.ready(endpoints) == []  # still busy where it moved
    freed = {"a": endpoint("a", 80_000), "b": endpoint("b", 0)}
    (released,) = hold.ready(freed)
    assert (released.request_id, released.worker_id) == ("r1", "b")


def test_a_departed_client_is_forgotten() -> None:
    hold = PrefillHold(8)
    assert hold.offer(request("r1"), {"a": endpoint("a", 9000), "b": endpoint("b", 9000)})
    assert hold.forget("r1") and not hold.forget("r1")
    assert len(hold) == 0


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_per_worker: must be >= 1, got 0"):
        PrefillHold(0)


def test_the_runner_up_is_the_best_other_candidate() -> None:
    a, b, c = endpoint("a"), endpoint("b"), endpoint("c")
    scored = [ScoredEndpoint(a, 3.0), ScoredEndpoint(b, 1.0), ScoredEndpoint(c, 2.0)]
    assert runner_up(Decision(a, "p", "max-score", {}, scored)) == "c"
    assert runner_up(Decision(a, "p", "max-score", {}, [ScoredEndpoint(a, 1.0)])) is None


def test_a_worker_that_left_does_not_hold_its_prefills() -> None:
    hold = PrefillHold(8)
    assert hold.offer(request("r1", "a", "b"), {"a": endpoint("a", 9000), "b": endpoint("b", 9000)})
    # a left: a new request for it is not held, and r1 is handed back (its call will fail
    # and be retried elsewhere); nothing moves towards a worker without an endpoint.
    assert not hold.offer(request("r2", "a", "b"), {"b": endpoint("b", 9000)})
    assert [r.request_id for r in hold.ready({"b": endpoint("b", 9000)})] == ["r1"]
