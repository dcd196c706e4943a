"""DualMap's hotspot rebalancing: which held-back requests move, and that moves help."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from triskel.router.scheduling.plugins.dualmap.rebalance import (
    Move,
    QueuedRequest,
    plan_rebalance,
    ttft_behind_ms,
)
from triskel.router.scheduling.types import ActiveLoad, Endpoint

from support.scheduling import endpoint

# No latency profile: predicted TTFT = 0.1 ms × (tokens queued ahead + own uncached tokens).


def held(request_id: str, on: str, other: str, here: int, there: int) -> QueuedRequest:
    return QueuedRequest(request_id, on, (on, other), (here, there))


def pool(**queued_tokens: int) -> dict[str, Endpoint]:
    return {
        w: endpoint(w, active=ActiveLoad(num_prefill_tokens=n)) for w, n in queued_tokens.items()
    }


def test_nothing_held_means_nothing_to_move() -> None:
    assert plan_rebalance([], pool(a=0)) == []


def test_the_last_request_on_a_hotspot_moves_when_its_ttft_drops() -> None:
    queue = [held("r1", "a", "b", 1000, 1000), held("r2", "a", "b", 1000, 1000)]
    # r2 waits behind r1 on a: 0.1·2000 = 200 ms; alone on b: 0.1·1000 = 100 ms → move.
    # Then a and b both finish in 100 ms; r1 on b would wait 200 ms → stays.
    assert plan_rebalance(queue, pool(a=0, b=0)) == [Move("r2", "a", "b", 200.0, 100.0)]


def test_the_hotspot_drains_until_moving_no_longer_helps() -> None:
    queue = [held(f"r{i}", "a", "b", 1000, 1000) for i in range(1, 5)]
    moves = plan_rebalance(queue, pool(a=0, b=0))
    # r4: 400 → 100 ms; r3: 300 → 200 ms; then a and b both drain in 200 ms and r2
    # (200 ms on a) would take 300 ms on b.
    assert moves == [Move("r4", "a", "b", 400.0, 100.0), Move("r3", "a", "b", 300.0, 200.0)]


@pytest.mark.parametrize(
    ("tokens_on_b", "b_queued", "expected_moves"),
    [
        # On a: 0.1·(3000 + 100) = 310 ms. On b, uncached 2000: 200 ms → move.
        (2000, 0, 1),
        # On b, uncached 4000: 400 ms > 310 ms → the cache hit on a is worth the wait.
        (4000, 0, 0),
        # b is busy with 2000 of its own tokens: 0.1·(2000 + 2000) = 400 ms → stay.
        (2000, 2000, 0),
    ],
)
def test_cache_and_the_other_workers_own_load_count(
    tokens_on_b: int, b_queued: int, expected_moves: int
) -> None:
    queue = [held("big", "a", "b", 3000, 3000), held("hit", "a", "b", 100, tokens_on_b)]
    moves = plan_rebalance(queue, pool(a=0, b=b_queued))
    assert [m.request_id for m in moves] == ["hit"] * expected_moves


def test_the_hottest_worker_is_relieved_first() -> None:
    queue = [
        held("a1", "a", "c", 1000, 1000),
        held("a2", "a", "c", 1000, 1000),
        held("b1", "b", "c", 1000, 1000),
        held("b2", "b", "c", 1000, 1000),
        held("b3", "b", "c", 1000, 1000),
    ]
    moves = plan_rebalance(queue, pool(a=0, b=0, c=0))
    # b (300 ms) before a (200 ms): b3 → c (100 ms). Then a and b both drain in 200 ms; a2 or
    # b2 would take 200 ms on c, not less than the 200 ms they wait now: nothing else moves.
    assert moves == [Move("b3", "b", "c", 300.0, 100.0)]


def test_a_request_whose_candidates_are_one_worker_never_moves() -> None:
    queue = [held("r1", "a", "a", 5000, 5000), held("r2", "a", "a", 5000, 5000)]
    assert plan_rebalance(queue, pool(a=0)) == []


def test_every_move_lowers_the_movers_ttft_and_delays_nobody() -> None:
    rng = random.Random(7)
    workers = [f"w{i}" for i in range(6)]
    endpoints = pool(**{w: rng.randrange(0, 4000) for w in workers})
    queue = []
    for i in range(60):
        here, there = rng.sample(workers[:3] if i % 3 else workers, 2)  # skewed: hot w0..w2
        queue.append(held(f"r{i}", here, there, rng.randrange(1, 3000), rng.randrange(1, 3000)))
    moves = plan_rebalance(queue, endpoints)
    assert moves

    def ttfts(requests: list[QueuedRequest]) -> dict[str, float]:
        ahead: dict[str, int] = {}
        result = {}
        for r in requests:
            tokens = r.uncached_on(r.worker_id)
            before = ahead.get(r.worker_id, 0)
            result[r.request_id] = ttft_behind_ms(endpoints[r.worker_id], before, tokens)
            ahead[r.worker_id] = before + tokens
        return result

    before = ttfts(queue)
    # Apply the moves as the router would: the mover joins the back of the other queue.
    final = list(queue)
    for move in moves:
        index = next(i for i, r in enumerate(final) if r.request_id == move.request_id)
        mover = final.pop(index)
        final.append(
            QueuedRequest(
                mover.request_id, move.to_worker_id, mover.candidate_ids, mover.num_uncached_tokens
            )
        )
    after = ttfts(final)
    moved = {m.request_id for m in moves}
    assert len(moved) == len(moves)  # each request moves at most once
    assert all(after[r] < before[r] for r in moved)
    assert all(after[r] <= before[r] + 1e-9 for r in before)
    assert max(after.values()) < max(before.values())


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: held("r", "a", "b", -1, 5), "num_uncached_tokens must be >= 0, got \\(-1, 5\\)"),
        (
            lambda: QueuedRequest("r", "z", ("a", "b"), (1, 1)),
            "worker_id 'z' is not one of candidate_ids",
        ),
    ],
)
def test_bad_queued_requests_are_refused(build: Callable[[], QueuedRequest], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        build()


def test_a_candidate_without_an_endpoint_is_an_error() -> None:
    with pytest.raises(ValueError, match="queued request r: candidate 'b' has no endpoint"):
        plan_rebalance([held("r", "a", "b", 1, 1)], pool(a=0))


def test_ttft_behind_adds_held_tokens_to_the_workers_queue() -> None:
    # The worker's report (500 tokens) exceeds the router's count (200): 500 + 300 + 100.
    busy = endpoint("a", tokens_in_flight=500, active=ActiveLoad(num_prefill_tokens=200))
    assert ttft_behind_ms(busy, 300, 100) == pytest.approx(90.0)
    assert ttft_behind_ms(busy, 0, 100) == pytest.approx(60.0)
