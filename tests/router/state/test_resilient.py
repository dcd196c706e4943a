"""ResilientState against a real redis-server that dies, hangs and comes back."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from triskel.common.hashing import BlockHash
from triskel.router.state import LoadCounts, StateConfig, open_state
from triskel.router.state.resilient import ResilientState

from support.redis_server import RedisServer, eventually

H1, H2 = BlockHash(101), BlockHash(202)
# A bound for "returned instead of hanging": many times the per-call timeout below.
RETURNS_WITHIN_S = 2.0


class Replica:
    """One router's shared state and the Redis errors it reported."""

    def __init__(self, state: ResilientState, errors: list[str]) -> None:
        self.state = state
        self.errors = errors


@pytest_asyncio.fixture
async def open_replica(
    private_redis: RedisServer, config: StateConfig
) -> AsyncIterator[Callable[[str], Replica]]:
    resilient_config = dataclasses.replace(config, call_timeout_s=0.2, heartbeat_interval_s=0.1)
    replicas: list[Replica] = []

    def open_replica(router_id: str) -> Replica:
        errors: list[str] = []
        state = open_state(
            private_redis.url,
            router_id=router_id,
            config=resilient_config,
            on_redis_error=errors.append,
        )
        assert isinstance(state, ResilientState)
        replicas.append(Replica(state, errors))
        return replicas[-1]

    yield open_replica
    for replica in replicas:
        await replica.state.aclose()


@pytest.mark.asyncio
async def test_falls_back_to_memory_while_redis_is_down_and_returns_to_it(
    private_redis: RedisServer, open_replica: Callable[[str], Replica]
) -> None:
    a, b = open_replica("router-a"), open_replica("router-b")
    await a.state.start()
    await b.state.start()
    await a.state.load.add("w1", LoadCounts(1, 100, 0))
    await b.state.load.add("w1", LoadCounts(2, 0, 6))
    await a.state.members.register("llama", "w1")
    await b.state.members.register("llama", "w2")
    await a.state.prefixes.record("w1", [H1, H2])
    # Through Redis each replica sees both shares, both announcements, a's history.
    assert await b.state.load.totals(["w1"]) == {"w1": LoadCounts(3, 100, 6)}
    assert await b.state.members.members("llama") == ["w1", "w2"]
    assert await b.state.prefixes.match_lengths([H1, H2], ["w1"]) == [2]
    # Concurrent calls fill the connection pools; those connections go stale below.
    await asyncio.gather(*(a.state.load.totals(["w1"]) for _ in range(4)))
    assert a.errors == [] and b.errors == []

    private_redis.stop()
    # Every call still answers, from what this replica knows itself.
    assert await a.state.load.totals(["w1"]) == {"w1": LoadCounts(1, 100, 0)}
    assert await a.state.members.members("llama") == ["w1"]
    assert await a.state.prefixes.match_lengths([H1, H2], ["w1"]) == [2]
    assert await b.state.prefixes.match_lengths([H1, H2], ["w1"]) == [0]
    await a.state.load.add("w1", LoadCounts(1, 0, 0))  # dispatched during the outage
    assert await a.state.load.totals(["w1"]) == {"w1": LoadCounts(2, 100, 0)}
    assert a.errors and b.errors  # counted for triskel_redis_errors_total
    assert a.state.guard.is_out

    private_redis.start()  # the same port, empty

    async def shares_republished() -> bool:
        # a's share includes the dispatch made during the outage.
        totals = await b.state.load.totals(["w1"])
        members = await b.state.members.members("llama")
        return totals == {"w1": LoadCounts(4, 100, 6)} and members == ["w1", "w2"]

    await eventually(shares_republished)
    assert not a.state.guard.is_out
    num_errors = len(a.errors)
    # Redis is used again without errors, even on pooled connections from before.
    many_totals = await asyncio.gather(*(a.state.load.totals(["w1"]) for _ in range(4)))
    assert many_totals == [{"w1": LoadCounts(4, 100, 6)}] * 4
    assert len(a.errors) == num_errors


@pytest.mark.asyncio
async def test_a_hung_redis_costs_a_timeout_not_a_stall(
    private_redis: RedisServer, open_replica: Callable[[str], Replica]
) -> None:
    a = open_replica("router-a")
    await a.state.load.add("w1", LoadCounts(1, 10, 1))
    await a.state.prefixes.record("w1", [H1])

    private_redis.pause()
    try:
        totals = await asyncio.wait_for(a.state.load.totals(["w1"]), RETURNS_WITHIN_S)
        lengths = await asyncio.wait_for(
            a.state.prefixes.match_lengths([H1], ["w1"]), RETURNS_WITHIN_S
        )
    finally:
        private_redis.resume()
    assert totals == {"w1": LoadCounts(1, 10, 1)}
    assert lengths == [1]
    # Counted once per failed call; the second call usually finds Redis in backoff.
    assert a.errors[0] == "load.totals"

    async def redis_used_again() -> bool:
        await a.state.load.totals(["w1"])
        return not a.state.guard.is_out

    await eventually(redis_used_again)


@pytest.mark.asyncio
async def test_redis_down_from_the_start_only_means_fallbacks(
    config: StateConfig,
) -> None:
    errors: list[str] = []
    # Port 1 on loopback: nothing listens there, so every connection is refused.
    state = open_state(
        "redis://127.0.0.1:1/0", router_id="lonely", config=config, on_redis_error=errors.append
    )
    await state.start()
    try:
        await state.members.register("llama", "w1")
        assert await state.members.members("llama") == ["w1"]
    finally:
        await state.aclose()
    assert errors  # the start-up heartbeat or the register failed and was counted
