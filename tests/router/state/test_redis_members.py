"""RedisWorkerRegistry against a real redis-server: one membership for all replicas."""

from __future__ import annotations

import dataclasses

import pytest
from redis.asyncio import Redis

from triskel.router.state import StateConfig
from triskel.router.state.redis_members import RedisWorkerRegistry

from support.redis_server import eventually


@pytest.mark.asyncio
async def test_replicas_see_the_union_of_announcements(
    redis_pair: tuple[Redis, Redis], config: StateConfig
) -> None:
    router_a = RedisWorkerRegistry(redis_pair[0], config)
    router_b = RedisWorkerRegistry(redis_pair[1], config)
    await router_a.register("llama", "w2")
    await router_a.register("llama", "w1")
    await router_b.register("llama", "w2")
    await router_b.register("llama", "w3")
    await router_b.register("qwen", "q1")

    # Sorted, without duplicates, the same in both replicas; models kept apart.
    assert await router_a.members("llama") == ["w1", "w2", "w3"]
    assert await router_b.members("llama") == ["w1", "w2", "w3"]
    assert await router_a.members("qwen") == ["q1"]
    assert await router_a.members("mistral") == []


@pytest.mark.asyncio
async def test_deregister_withdraws_for_every_replica(
    redis_pair: tuple[Redis, Redis], config: StateConfig
) -> None:
    router_a = RedisWorkerRegistry(redis_pair[0], config)
    router_b = RedisWorkerRegistry(redis_pair[1], config)
    await router_a.register("llama", "w1")
    await router_a.register("llama", "w2")
    await router_b.deregister("llama", "w1")
    assert await router_b.members("llama") == ["w2"]
    # a still announced w1 itself; its next heartbeat brings it back for everyone
    # (a replica that still sees a worker live keeps it in the ring).
    await router_a.heartbeat()
    assert await router_b.members("llama") == ["w1", "w2"]


@pytest.mark.asyncio
async def test_announcements_of_a_dead_router_expire(
    redis_pair: tuple[Redis, Redis], config: StateConfig
) -> None:
    short = dataclasses.replace(config, member_ttl_s=0.3, heartbeat_interval_s=0.1)
    dead = RedisWorkerRegistry(redis_pair[0], short)
    alive = RedisWorkerRegistry(redis_pair[1], short)
    await dead.register("llama", "w-gone")
    await alive.register("llama", "w-kept")
    assert await alive.members("llama") == ["w-gone", "w-kept"]

    async def only_kept_left() -> bool:
        await alive.heartbeat()
        return await alive.members("llama") == ["w-kept"]

    await eventually(only_kept_left)


@pytest.mark.asyncio
async def test_own_announcements_are_members_even_if_redis_lost_them(
    redis_pair: tuple[Redis, Redis], config: StateConfig
) -> None:
    router_a = RedisWorkerRegistry(redis_pair[0], config)
    await router_a.register("llama", "w1")
    await redis_pair[0].delete(f"{config.key_prefix}:members:llama")
    assert await router_a.members("llama") == ["w1"]
