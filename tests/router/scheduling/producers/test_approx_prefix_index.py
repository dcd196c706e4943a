"""ApproximatePrefixIndex: match walking, LRU eviction order, TTL expiry on a fake clock."""

from __future__ import annotations

import random
from collections import OrderedDict

import pytest

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.candidates import Candidates
from triskel.router.scheduling.producers.approx_prefix_index import ApproximatePrefixIndex
from triskel.router.scheduling.types import Endpoint


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def hashes(*values: int) -> list[BlockHash]:
    return [BlockHash(v) for v in values]


H = hashes(10, 11, 12, 13)


def endpoint(worker_id: str) -> Endpoint:
    return Endpoint(worker_id=worker_id, model="m", block_size_tokens=16)


def test_records_match_from_block_zero() -> None:
    index = ApproximatePrefixIndex(FakeClock())
    index.record("a", H[:3])
    index.record("b", H[1:])  # without block 0 nothing of this counts
    assert index.match_lengths(H, ["a", "b", "c"]) == [3, 0, 0]
    assert index.match_lengths([], ["a"]) == [0]


def test_lru_evicts_least_recently_recorded_first() -> None:
    index = ApproximatePrefixIndex(FakeClock(), capacity_blocks_per_worker=3)
    index.record("a", hashes(1, 2, 3))
    index.record("a", hashes(1))  # touch 1: now 2 is the oldest
    index.record("a", hashes(4))  # over capacity by one → 2 goes
    assert index.num_blocks("a") == 3
    assert index.match_lengths(hashes(1), ["a"]) == [1]
    assert index.match_lengths(hashes(2), ["a"]) == [0]
    assert index.match_lengths(hashes(3), ["a"]) == [1]
    # Capacity is per worker: b's records never evict a's.
    index.record("b", hashes(5, 6, 7))
    assert index.num_blocks("a") == 3


@pytest.mark.parametrize(
    ("age_s", "expected"),
    [
        pytest.param(119.9, 4, id="just-alive"),
        pytest.param(120.0, 0, id="expires-at-ttl"),  # age ≥ TTL means gone
        pytest.param(500.0, 0, id="long-gone"),
    ],
)
def test_entries_expire_after_ttl(age_s: float, expected: int) -> None:
    clock = FakeClock()
    index = ApproximatePrefixIndex(clock, ttl_s=120.0)
    index.record("a", H)
    clock.now_s = age_s
    assert index.match_lengths(H, ["a"]) == [expected]


def test_recording_again_refreshes_the_ttl() -> None:
    clock = FakeClock()
    index = ApproximatePrefixIndex(clock, ttl_s=10.0)
    index.record("a", H)
    clock.now_s = 8.0
    index.record("a", H[:2])
    clock.now_s = 12.0
    # Blocks 0 and 1 were refreshed at t=8 (age 4 s); 2 and 3 are 12 s old.
    assert index.match_lengths(H, ["a"]) == [2]
    assert index.num_blocks("a") == 2


def test_sweep_frees_workers_that_are_never_matched_again() -> None:
    clock = FakeClock()
    index = ApproximatePrefixIndex(clock, ttl_s=10.0)
    index.record("gone", H)
    clock.now_s = 11.0
    index.record("a", H[:1])  # a record after one TTL sweeps every worker
    assert index.num_blocks("gone") == 0
    assert index.match_lengths(H, ["a", "gone"]) == [1, 0]


def test_remove_worker() -> None:
    index = ApproximatePrefixIndex(FakeClock())
    index.record("a", H)
    index.record("b", H)
    index.remove_worker("a")
    assert index.match_lengths(H, ["a", "b"]) == [0, 4]


@pytest.mark.parametrize(
    ("capacity", "ttl_s", "field"),
    [(0, 1.0, "capacity_blocks_per_worker"), (1, 0.0, "ttl_s"), (1, -5.0, "ttl_s")],
)
def test_bad_arguments_name_the_field(capacity: int, ttl_s: float, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ApproximatePrefixIndex(FakeClock(), capacity_blocks_per_worker=capacity, ttl_s=ttl_s)


def test_the_column_walk_expires_holders_as_the_list_walk_does() -> None:
    clock = FakeClock()
    index = ApproximatePrefixIndex(clock, ttl_s=10.0)
    index.record("a", H)  # expires at 10 s
    clock.now_s = 6.0
    index.record("b", H[:2])  # expires at 16 s
    index.record("a", H[:1])  # a's first block is fresh again; the rest still expire at 10
    candidates = Candidates([endpoint("a"), endpoint("b"), endpoint("c")])
    assert index.match_column(H, candidates).tolist() == [4, 2, 0]
    clock.now_s = 12.0  # a's blocks 1-3 are gone: the walk runs again without them
    assert index.match_column(H, candidates).tolist() == [1, 2, 0]
    assert index.match_lengths(H, ["a", "b", "c"]) == [1, 2, 0]
    clock.now_s = 20.0
    assert index.match_column(H, candidates).tolist() == [0, 0, 0]


class _Reference:
    """The plain model the lazy index must agree with: per worker an OrderedDict hash →
    time recorded, moved to the end on each record, evicted and expired from the front."""

    def __init__(self, capacity: int, ttl_s: float) -> None:
        self.capacity, self.ttl_s = capacity, ttl_s
        self.lru: dict[str, OrderedDict[BlockHash, float]] = {}

    def record(self, worker: str, blocks: list[BlockHash], now: float) -> None:
        lru = self.lru.setdefault(worker, OrderedDict())
        for block in blocks:
            lru.pop(block, None)
            lru[block] = now
        while len(lru) > self.capacity:
            lru.popitem(last=False)

    def match(self, blocks: list[BlockHash], worker: str, now: float) -> int:
        lru = self.lru.get(worker, OrderedDict())
        matched = 0
        for block in blocks:
            recorded = lru.get(block)
            if recorded is None or recorded <= now - self.ttl_s:
                break
            matched += 1
        return matched


@pytest.mark.parametrize("seed", range(6))
def test_the_lazy_lru_agrees_with_a_plain_one_through_random_use(seed: int) -> None:
    # Small capacity and TTL, prompts drawn from a few shared prefixes (so blocks are
    # recorded again and again: stale entries, compaction), workers removed now and then.
    rng = random.Random(seed)
    clock = FakeClock()
    index = ApproximatePrefixIndex(clock, capacity_blocks_per_worker=40, ttl_s=5.0)
    reference = _Reference(40, 5.0)
    workers = [f"w{i}" for i in range(5)]
    prefixes = [hashes(*range(p * 100, p * 100 + 30)) for p in range(6)]
    for _ in range(3000):
        clock.now_s += rng.choice([0.0, 0.0, 0.01, 0.3, 1.0])
        prompt = rng.choice(prefixes)[: rng.randint(1, 30)]
        action = rng.random()
        if action < 0.6:
            worker = rng.choice(workers)
            index.record(worker, prompt)
            reference.record(worker, prompt, clock.now_s)
        elif action < 0.98:
            expected = [reference.match(prompt, w, clock.now_s) for w in workers]
            assert index.match_lengths(prompt, workers) == expected
            candidates = Candidates([endpoint(w) for w in workers])
            assert index.match_column(prompt, candidates).tolist() == expected
        else:
            worker = rng.choice(workers)
            index.remove_worker(worker)
            reference.lru.pop(worker, None)
    for worker in workers:  # what is live is what the reference holds
        live = [b for b, t in reference.lru.get(worker, {}).items() if t > clock.now_s - 5.0]
        index.match_lengths([], [worker])  # expires the worker's old entries
        assert index.num_blocks(worker) >= len(live)
