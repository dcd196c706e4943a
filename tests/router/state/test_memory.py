"""In-memory state: this router's own load, announcements and prefix history."""

from __future__ import annotations

import dataclasses

import pytest

from triskel.common.hashing import BlockHash
from triskel.router.state import LoadCounts, StateConfig, load_in_flight
from triskel.router.state.memory import (
    MemoryLoadLedger,
    MemoryPrefixHistory,
    MemoryState,
    MemoryWorkerRegistry,
)

H1, H2, H3 = BlockHash(1), BlockHash(2), BlockHash(3)


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


@pytest.mark.asyncio
async def test_load_sums_deltas_and_forgets_idle_workers() -> None:
    ledger = MemoryLoadLedger()
    await ledger.add("w1", LoadCounts(1, 100, 0))
    await ledger.add("w1", LoadCounts(1, 50, 2))
    assert await ledger.totals(["w1", "w2"]) == {"w1": LoadCounts(2, 150, 2), "w2": LoadCounts()}
    await ledger.add("w1", -LoadCounts(2, 150, 2))
    # Back at zero the worker is dropped, so the ledger only holds busy workers.
    assert ledger.nonzero() == {}


@pytest.mark.asyncio
async def test_load_in_flight_subtracts_even_when_the_body_fails() -> None:
    ledger = MemoryLoadLedger()
    with pytest.raises(RuntimeError):
        async with load_in_flight(ledger, "w1", LoadCounts(1, 64, 4)):
            assert ledger.get("w1") == LoadCounts(1, 64, 4)
            raise RuntimeError("worker failed")
    assert ledger.get("w1") == LoadCounts()


@pytest.mark.asyncio
async def test_registry_sorts_members_and_forgets_empty_models() -> None:
    registry = MemoryWorkerRegistry()
    await registry.register("llama", "w2")
    await registry.register("llama", "w1")
    await registry.register("llama", "w1")
    assert await registry.members("llama") == ["w1", "w2"]
    await registry.deregister("llama", "w1")
    await registry.deregister("llama", "w2")
    await registry.deregister("qwen", "never-registered")
    assert registry.by_model() == {}


@pytest.mark.parametrize(
    ("recorded", "asked", "expected"),
    [
        # Leading run only: the gap at H2 stops the match.
        ([H1, H3], [H1, H2, H3], 1),
        ([H1, H2, H3], [H1, H2, H3], 3),
        ([H1, H2, H3], [H1, H2], 2),
        ([], [H1], 0),
    ],
)
@pytest.mark.asyncio
async def test_prefix_match_counts_the_leading_run(
    recorded: list[BlockHash], asked: list[BlockHash], expected: int
) -> None:
    history = MemoryPrefixHistory(StateConfig())
    await history.record("w1", recorded)
    assert await history.match_lengths(asked, ["w1", "w-other"]) == [expected, 0]


@pytest.mark.asyncio
async def test_prefix_records_expire_after_the_ttl() -> None:
    clock = FakeClock()
    history = MemoryPrefixHistory(StateConfig(prefix_ttl_s=10.0), clock)
    await history.record("w1", [H1, H2])
    clock.now_s += 5.0
    await history.record("w1", [H1])  # a newer prompt refreshes only the first block
    clock.now_s += 6.0
    # 11 s after the first record, 6 s after the refresh: H1 lives, H2 has expired.
    assert await history.match_lengths([H1, H2], ["w1"]) == [1]
    await history.record("w2", [H3])
    # Recording drops expired records from the front: (w1, H2) is gone.
    assert len(history) == 2


def test_prefix_history_keeps_at_most_its_capacity() -> None:
    config = dataclasses.replace(StateConfig(), memory_prefix_capacity=2)
    history = MemoryPrefixHistory(config, FakeClock())
    history.record_now("w1", [H1, H2])
    history.record_now("w2", [H1])
    # The least recently recorded (w1, H1) made room for (w2, H1).
    assert len(history) == 2
    assert history.match_now([H1, H2], ["w1", "w2"]) == [0, 1]


@pytest.mark.asyncio
async def test_memory_state_has_a_no_op_lifecycle() -> None:
    state = MemoryState()
    await state.start()
    await state.load.add("w1", LoadCounts(1, 1, 1))
    assert await state.load.totals(["w1"]) == {"w1": LoadCounts(1, 1, 1)}
    await state.aclose()
