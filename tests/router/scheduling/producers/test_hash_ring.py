"""The consistent-hash ring: lookups, minimal remapping, seeded independence, sync."""

from __future__ import annotations

from collections import Counter

import pytest

from triskel.router.scheduling.producers.hash_ring import HashRing

KEYS = range(0, 20_000 * 7919, 7919)  # 20,000 spread-out keys; the ring re-hashes them anyway


def ring_of(*worker_ids: str, seed: int = 0, vnodes: int = 100) -> HashRing:
    ring = HashRing(vnodes, seed)
    for worker_id in worker_ids:
        ring.add(worker_id)
    return ring


WORKERS = [f"w{i}" for i in range(10)]


def test_an_empty_ring_refuses_lookups_and_walks_nothing() -> None:
    ring = HashRing(seed=7)
    with pytest.raises(LookupError, match="seed 7"):
        ring.lookup(1)
    assert list(ring.walk(1)) == []


def test_vnodes_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="vnodes_per_worker must be >= 1, got 0"):
        HashRing(0)


def test_members_follow_add_and_remove_and_repeats_change_nothing() -> None:
    ring = ring_of("a", "b")
    ring.add("a")
    assert ring.members == {"a", "b"} and len(ring) == 2 and "a" in ring
    before = [ring.lookup(k) for k in KEYS]
    ring.remove("zzz")  # not a member: no-op
    assert [ring.lookup(k) for k in KEYS] == before
    ring.remove("a")
    assert ring.members == {"b"}
    # One member left: it owns every key.
    assert {ring.lookup(k) for k in KEYS} == {"b"}


def test_removing_a_worker_moves_only_its_own_keys() -> None:
    ring = ring_of(*WORKERS)
    before = {k: ring.lookup(k) for k in KEYS}
    ring.remove("w3")
    after = {k: ring.lookup(k) for k in KEYS}
    moved = [k for k in KEYS if before[k] != after[k]]
    # Keys that did not map to w3 keep their owner; every key of w3 moved somewhere.
    assert moved and all(before[k] == "w3" for k in moved)
    assert sum(1 for k in KEYS if before[k] == "w3") == len(moved)


def test_adding_a_worker_only_takes_keys_for_itself() -> None:
    ring = ring_of(*WORKERS)
    before = {k: ring.lookup(k) for k in KEYS}
    ring.add("w10")
    moved = [k for k in KEYS if ring.lookup(k) != before[k]]
    assert moved and all(ring.lookup(k) == "w10" for k in moved)
    # Fair share for 11 workers is 1/11 of the keys (~1,818); 100 vnodes keep it within ±50%.
    assert len(KEYS) / 11 * 0.5 < len(moved) < len(KEYS) / 11 * 1.5


def test_keys_spread_evenly_over_the_workers() -> None:
    ring = ring_of(*WORKERS)
    counts = Counter(ring.lookup(k) for k in KEYS)
    # 100 vnodes per worker: each arc total is within ±50% of the fair 1/10.
    assert set(counts) == set(WORKERS)
    assert all(1_000 < n < 3_000 for n in counts.values()), counts


def test_rings_with_different_seeds_place_keys_independently() -> None:
    first, second = ring_of(*WORKERS, seed=1), ring_of(*WORKERS, seed=2)
    same = sum(1 for k in KEYS if first.lookup(k) == second.lookup(k))
    # Independent owners agree with probability 1/10 (2,000 of 20,000 keys); equal seeds always.
    assert 1_200 < same < 2_800
    again = ring_of(*WORKERS, seed=1)
    assert all(first.lookup(k) == again.lookup(k) for k in KEYS)


def test_the_owner_does_not_depend_on_insertion_order() -> None:
    forward, backward = ring_of(*WORKERS), ring_of(*reversed(WORKERS))
    assert all(forward.lookup(k) == backward.lookup(k) for k in KEYS)


@pytest.mark.parametrize("key", [-1, 0, 2**64 - 1, 2**64, 2**70 + 5])
def test_any_int_key_maps_to_a_member(key: int) -> None:
    # Keys are reduced to 64 bits, so 2**64 behaves as 0 and -1 as 2**64 - 1.
    ring = ring_of("a", "b", "c")
    assert ring.lookup(key) == ring.lookup(key % 2**64)


def test_walk_yields_each_member_once_starting_at_the_owner() -> None:
    ring = ring_of(*WORKERS)
    for key in KEYS[:200]:
        walked = list(ring.walk(key))
        assert walked[0] == ring.lookup(key)
        assert sorted(walked) == sorted(WORKERS)


def test_sync_touches_only_the_changed_workers() -> None:
    ring = ring_of(*WORKERS)
    before = {k: ring.lookup(k) for k in KEYS}
    ring.sync([w for w in WORKERS if w != "w0"] + ["new"])
    assert ring.members == (set(WORKERS) - {"w0"}) | {"new"}
    # Same result as building the ring from scratch with those members...
    fresh = ring_of(*sorted(ring.members))
    assert all(ring.lookup(k) == fresh.lookup(k) for k in KEYS)
    # ...and keys of unchanged workers stay put unless the new worker took them.
    assert all(ring.lookup(k) in (before[k], "new") for k in KEYS if before[k] != "w0")


def test_sync_with_the_same_members_keeps_the_ring_object_state() -> None:
    ring = ring_of("a", "b")
    points_before = list(ring._points)
    ring.sync(["b", "a", "a"])
    assert ring._points == points_before
