"""Candidates: columns built once, slot positions that follow the slots, lazy scored rows."""

from __future__ import annotations

import random

import numpy as np
import pytest

from triskel.router.scheduling.candidates import (
    Candidates,
    Column,
    ScoredCandidates,
    gather,
    mask_of,
)
from triskel.router.scheduling.producers.worker_masks import WorkerSlots
from triskel.router.scheduling.types import ActiveLoad, Endpoint, ScoredEndpoint, WorkerLoad


def endpoint(worker_id: str, waiting: int = 0, kv_usage: float = 0.0, active: int = 0) -> Endpoint:
    return Endpoint(
        worker_id=worker_id,
        model="m",
        block_size_tokens=16,
        load=WorkerLoad(num_waiting_requests=waiting, kv_usage=kv_usage),
        active=ActiveLoad(num_requests=active),
    )


def test_columns_follow_the_endpoints_in_order_and_are_built_once() -> None:
    candidates = Candidates([endpoint("a", 3, 0.5, 1), endpoint("b", 0, 0.25, 7)])
    assert candidates.column(Column.WAITING).tolist() == [3, 0]
    assert candidates.column(Column.KV_USAGE).tolist() == [0.5, 0.25]
    assert candidates.column(Column.ACTIVE_REQUESTS).tolist() == [1, 7]
    assert candidates.column(Column.WAITING) is candidates.column(Column.WAITING)
    with pytest.raises(ValueError, match="read-only"):
        candidates.column(Column.WAITING)[0] = 9  # shared by every scorer of the pick
    assert [e.worker_id for e in candidates] == ["a", "b"] and candidates[1].worker_id == "b"
    assert candidates.row_of("b") == 1 and candidates.row_of("z") is None
    assert Candidates.of(candidates) is candidates


def test_positions_and_mask_follow_slot_changes() -> None:
    slots = WorkerSlots()
    slots.bit("b")  # slot 0
    candidates = Candidates([endpoint("a"), endpoint("b")])
    assert candidates.positions(slots).tolist() == [-1, 0]
    assert candidates.mask(slots) == 0b1
    slots.bit("a")  # slot 1: the next pick must see it
    assert candidates.positions(slots).tolist() == [1, 0]
    assert candidates.mask(slots) == 0b11
    slots.release("b")
    assert candidates.positions(slots).tolist() == [1, -1]
    assert candidates.mask(slots) == 0b10


def test_gather_spreads_slot_values_and_gives_zero_without_a_slot() -> None:
    by_slot = np.array([4, 0, 9, 0])  # slots 0..2, then the spare 0
    assert gather(by_slot, np.array([2, -1, 0])).tolist() == [9.0, 0.0, 4.0]
    assert mask_of(np.array([3, -1, 0]), num_slots=12) == 0b1001


def test_scored_candidates_build_their_rows_on_demand() -> None:
    candidates = Candidates([endpoint("a"), endpoint("b")])
    scored = ScoredCandidates(candidates, np.array([0.5, 2.0]))
    assert len(scored) == 2
    assert scored[1] == ScoredEndpoint(candidates[1], 2.0)
    assert type(scored[1].score) is float
    assert list(scored) == [ScoredEndpoint(candidates[0], 0.5), ScoredEndpoint(candidates[1], 2.0)]


def test_patched_positions_match_fresh_ones_through_any_churn() -> None:
    # Workers join and leave between picks; slots are reused. A kept Candidates patches
    # only the changed rows (or derives everything when far behind): always as if new.
    rng = random.Random(2)
    slots = WorkerSlots()
    workers = [f"w{i}" for i in range(300)]
    kept = Candidates([endpoint(w) for w in workers[:200]])
    for round_ in range(60):
        for _ in range(rng.choice([1, 5, 200 if round_ % 20 == 19 else 3])):
            worker = rng.choice(workers)
            if rng.random() < 0.6:
                slots.bit(worker)
            else:
                slots.release(worker)
        fresh = Candidates(kept.endpoints)
        assert kept.positions(slots).tolist() == fresh.positions(slots).tolist()
        assert kept.mask(slots) == fresh.mask(slots)
    for _ in range(5000):  # more changes than are kept: the next read derives it all
        slots.bit("x")
        slots.release("x")
    assert slots.changes_since(0) is None
    assert kept.positions(slots).tolist() == Candidates(kept.endpoints).positions(slots).tolist()
