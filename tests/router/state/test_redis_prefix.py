"""RedisPrefixHistory against a real redis-server: shared records, leading matches, TTL."""

from __future__ import annotations

import dataclasses

import pytest
from redis.asyncio import Redis

from triskel.common.hashing import BlockHash
from triskel.router.state import StateConfig
from triskel.router.state.redis_prefix import RedisPrefixHistory

from support.redis_server import eventually

H1, H2, H3, H4 = (BlockHash(value) for value in (11, 22, 2**64 - 1, 44))


@pytest.mark.asyncio
async def test_replicas_share_history(redis_pair: tuple[Redis, Redis], config: StateConfig) -> None:
    router_a = RedisPrefixHistory(redis_pair[0], config)
    router_b = RedisPrefixHistory(redis_pair[1], config)
    await router_a.record("w1", [H1, H2, H3])
    await router_b.record("w2", [H1])

    # w1 was sent the first three blocks, w2 only the first, w3 nothing.
    lengths = await router_b.match_lengths([H1, H2, H3, H4], ["w1", "w2", "w3"])
    assert lengths == [3, 1, 0]
    assert await router_a.match_lengths([H1, H2, H3, H4], ["w1", "w2", "w3"]) == lengths


@pytest.mark.parametrize(
    ("recorded", "asked", "expected"),
    [
        # Only the leading run counts: H3 after a missing H2 matches nothing more.
        ([H1, H3], [H1, H2, H3], 1),
        # A prompt that diverges at its first block shares nothing, even where a
        # later hash happens to be known (chained hashes make that a different prefix).
        ([H1, H2], [H4, H2], 0),
        # Asking for fewer blocks than were recorded caps the match.
        ([H1, H2, H3], [H1, H2], 2),
        # Nothing asked, nothing matched.
        ([H1], [], 0),
    ],
)
@pytest.mark.asyncio
async def test_match_counts_the_leading_run(
    redis_pair: tuple[Redis, Redis],
    config: StateConfig,
    recorded: list[BlockHash],
    asked: list[BlockHash],
    expected: int,
) -> None:
    history = RedisPrefixHistory(redis_pair[0], config)
    await history.record("w1", recorded)
    assert await history.match_lengths(asked, ["w1"]) == [expected]


@pytest.mark.asyncio
async def test_no_workers_asked_gives_no_lengths(
    redis_pair: tuple[Redis, Redis], config: StateConfig
) -> None:
    history = RedisPrefixHistory(redis_pair[0], config)
    assert await history.match_lengths([H1], []) == []


@pytest.mark.asyncio
async def test_records_expire(redis_pair: tuple[Redis, Redis], config: StateConfig) -> None:
    short = dataclasses.replace(config, prefix_ttl_s=0.2)
    history = RedisPrefixHistory(redis_pair[0], short)
    await history.record("w1", [H1, H2])
    assert await history.match_lengths([H1, H2], ["w1"]) == [2]

    async def forgotten() -> bool:
        return await history.match_lengths([H1, H2], ["w1"]) == [0]

    await eventually(forgotten)
