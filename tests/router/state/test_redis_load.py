"""RedisLoadLedger against a real redis-server: shared totals, expiry, repair."""

from __future__ import annotations

import dataclasses

import pytest
from redis.asyncio import Redis

from triskel.router.state import LoadCounts, StateConfig
from triskel.router.state.redis_load import RedisLoadLedger, decode_counts, encode_counts

from support.redis_server import eventually


@pytest.mark.parametrize(
    "counts",
    [
        LoadCounts(1, 512, 0),
        LoadCounts(0, 0, 33),
        # Negative values only appear transiently (a finish published before its
        # dispatch), but they must survive the round trip to cancel out later.
        LoadCounts(-1, -128, -4),
    ],
)
def test_counts_round_trip_through_their_redis_encoding(counts: LoadCounts) -> None:
    assert decode_counts(encode_counts(counts)) == counts


@pytest.mark.asyncio
async def test_two_routers_see_each_others_load(
    redis_pair: tuple[Redis, Redis], config: StateConfig
) -> None:
    router_a = RedisLoadLedger(redis_pair[0], "router-a", config)
    router_b = RedisLoadLedger(redis_pair[1], "router-b", config)
    await router_a.add("w1", LoadCounts(1, 100, 0))
    await router_b.add("w1", LoadCounts(2, 50, 8))
    await router_b.add("w2", LoadCounts(1, 0, 4))

    # Each total is a's share plus b's; w3 was never reported, so it is zero.
    expected = {
        "w1": LoadCounts(3, 150, 8),
        "w2": LoadCounts(1, 0, 4),
        "w3": LoadCounts(),
    }
    assert await router_a.totals(["w1", "w2", "w3"]) == expected
    assert await router_b.totals(["w1", "w2", "w3"]) == expected

    # a's request finishes: subtracting the same counts leaves only b's share.
    await router_a.add("w1", -LoadCounts(1, 100, 0))
    assert (await router_b.totals(["w1"]))["w1"] == LoadCounts(2, 50, 8)


@pytest.mark.asyncio
async def test_totals_for_repeated_or_no_worker_ids(
    redis_pair: tuple[Redis, Redis], config: StateConfig
) -> None:
    router_a = RedisLoadLedger(redis_pair[0], "router-a", config)
    router_b = RedisLoadLedger(redis_pair[1], "router-b", config)
    await router_a.add("w1", LoadCounts(1, 10, 1))
    # A repeated id must not count a's share twice.
    assert await router_b.totals(["w1", "w1"]) == {"w1": LoadCounts(1, 10, 1)}
    assert await router_b.totals([]) == {}


@pytest.mark.asyncio
async def test_a_dead_routers_share_expires(
    redis_pair: tuple[Redis, Redis], config: StateConfig
) -> None:
    short = dataclasses.replace(config, load_ttl_s=0.3, heartbeat_interval_s=0.1)
    dead = RedisLoadLedger(redis_pair[0], "router-dead", short)
    alive = RedisLoadLedger(redis_pair[1], "router-alive", short)
    await dead.add("w1", LoadCounts(5, 500, 0))
    await alive.add("w1", LoadCounts(1, 10, 0))
    assert (await alive.totals(["w1"]))["w1"] == LoadCounts(6, 510, 0)

    async def only_alive_share_left() -> bool:
        # The live router keeps heartbeating; the dead one has stopped.
        await alive.heartbeat()
        return (await alive.totals(["w1"]))["w1"] == LoadCounts(1, 10, 0)

    await eventually(only_alive_share_left)
    # The dead router's id is forgotten too, not just its counts.
    members = await redis_pair[1].smembers(f"{short.key_prefix}:load:routers")
    assert members == {"router-alive"}


@pytest.mark.asyncio
async def test_heartbeat_republishes_a_lost_share(
    redis_pair: tuple[Redis, Redis], config: StateConfig
) -> None:
    router_a = RedisLoadLedger(redis_pair[0], "router-a", config)
    router_b = RedisLoadLedger(redis_pair[1], "router-b", config)
    await router_a.add("w1", LoadCounts(2, 20, 2))
    await router_a.add("w2", LoadCounts(1, 0, 9))
    # As if Redis restarted empty, or a's writes were lost.
    await redis_pair[0].delete(f"{config.key_prefix}:load:router:router-a")
    assert await router_b.totals(["w1", "w2"]) == {"w1": LoadCounts(), "w2": LoadCounts()}

    await router_a.heartbeat()
    assert await router_b.totals(["w1", "w2"]) == {
        "w1": LoadCounts(2, 20, 2),
        "w2": LoadCounts(1, 0, 9),
    }


@pytest.mark.asyncio
async def test_finished_work_leaves_no_entry_behind(
    redis_pair: tuple[Redis, Redis], config: StateConfig
) -> None:
    router_a = RedisLoadLedger(redis_pair[0], "router-a", config)
    await router_a.add("w1", LoadCounts(1, 10, 1))
    await router_a.add("w1", -LoadCounts(1, 10, 1))
    # A zero share is deleted, so idle workers cost Redis nothing.
    assert await redis_pair[0].exists(f"{config.key_prefix}:load:router:router-a") == 0


def test_router_id_is_required(config: StateConfig) -> None:
    with pytest.raises(ValueError, match="router_id"):
        RedisLoadLedger(Redis(), "", config)
