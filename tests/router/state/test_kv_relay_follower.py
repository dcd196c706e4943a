"""The follower: its pure step per entry, then KvStreamFollower over a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.state import StateConfig, connect_redis
from triskel.router.state.guard import RedisGuard
from triskel.router.state.kv_relay_follower import (
    KvStreamFollower,
    StreamPlace,
    apply_entry,
    take_snapshot,
)
from triskel.router.state.kv_relay_store import (
    KvRelayStore,
    RelayEntry,
    StoredSnapshot,
)
from triskel.v1 import worker_pb2

from support.redis_server import RedisServer, eventually
from support.waiting import cancel_and_wait, wait_until


def batch(event_id: int, *chain: int, is_snapshot: bool = False) -> worker_pb2.KvEventBatch:
    stored = worker_pb2.KvEvent(
        event_id=event_id, stored=worker_pb2.BlocksStored(block_hashes=chain)
    )
    return worker_pb2.KvEventBatch(worker_id="w1", events=[stored], is_snapshot=is_snapshot)


def holds(index: KvBlockIndex, *chain: int) -> bool:
    return index.match_lengths([BlockHash(h) for h in chain], ["w1"]) == [len(chain)]


def in_step_at(entry_id: str) -> tuple[KvBlockIndex, StreamPlace]:
    """An index holding block 1 (event 1) and a place in step at `entry_id`."""
    index = KvBlockIndex()
    index.apply_snapshot("w1", [[BlockHash(1)]], 1)
    return index, StreamPlace(entry_id, is_in_step=True, needs_lookup=False)


def test_a_continuous_live_entry_is_applied() -> None:
    index, place = in_step_at("1-0")
    apply_entry(index, "w1", place, RelayEntry("2-0", "1-0", batch(2, 2)))
    assert holds(index, 2) and place == StreamPlace("2-0", is_in_step=True, needs_lookup=False)


def test_entries_missed_in_between_lose_the_place() -> None:
    index, place = in_step_at("1-0")
    # Event 2 follows event 1, but entries between 1-0 and 2-0 were trimmed away:
    # the event ids alone cannot prove nothing was missed (a restarted worker reuses them).
    apply_entry(index, "w1", place, RelayEntry("3-0", "2-0", batch(2, 2)))
    assert not holds(index, 2)
    assert (place.entry_id, place.is_in_step, place.needs_lookup) == ("3-0", False, True)


def test_a_refused_batch_loses_the_place() -> None:
    index, place = in_step_at("1-0")
    apply_entry(index, "w1", place, RelayEntry("2-0", "1-0", batch(5, 2)))  # event 5 after 1
    assert not place.is_in_step and place.needs_lookup


def test_a_lost_place_ignores_live_entries_until_a_snapshot() -> None:
    index, place = KvBlockIndex(), StreamPlace("1-0")
    apply_entry(index, "w1", place, RelayEntry("2-0", "1-0", batch(1, 1)))
    assert not holds(index, 1)  # no snapshot yet: the index cannot know what came before
    apply_entry(index, "w1", place, RelayEntry("3-0", "9-0", batch(1, 1, 2, is_snapshot=True)))
    assert holds(index, 1, 2) and place.is_in_step and place.entry_id == "3-0"


def test_a_lost_worker_entry_forgets_its_blocks() -> None:
    index, place = in_step_at("1-0")
    apply_entry(index, "w1", place, RelayEntry("2-0", "1-0", None))
    assert index.num_blocks("w1") == 0 and place.is_in_step


@pytest.mark.parametrize(
    ("snapshot_id", "is_taken"),
    [
        ("5-0", True),  # newer than the place: the entries before it do not matter
        ("3-0", False),  # read already: the index moved past it
        (None, False),  # no holder wrote one yet
    ],
)
def test_a_lost_place_takes_the_stored_snapshot_only_when_newer(
    snapshot_id: str | None, is_taken: bool
) -> None:
    index, place = KvBlockIndex(), StreamPlace("4-0")
    stored = (
        None if snapshot_id is None else StoredSnapshot(snapshot_id, batch(1, 1, is_snapshot=True))
    )
    take_snapshot(index, "w1", place, stored)
    assert holds(index, 1) is is_taken
    assert place.is_in_step is is_taken and not place.needs_lookup
    assert place.entry_id == ("5-0" if is_taken else "4-0")


@pytest_asyncio.fixture
async def holder_store(redis_url: str, relay_config: StateConfig) -> AsyncIterator[KvRelayStore]:
    redis = connect_redis(redis_url, relay_config, timeout_s=2.0, decode_responses=False)
    store = KvRelayStore(redis, "holder", relay_config)
    assert (await store.claim(["w1"]))["w1"].is_held
    yield store
    await redis.aclose()


@pytest_asyncio.fixture
async def follower_parts(
    redis_url: str, relay_config: StateConfig
) -> AsyncIterator[tuple[KvRelayStore, KvBlockIndex, list[str]]]:
    redis = connect_redis(redis_url, relay_config, timeout_s=2.0, decode_responses=False)
    yield KvRelayStore(redis, "follower", relay_config), KvBlockIndex(), []
    await redis.aclose()


@pytest.mark.asyncio
async def test_follows_from_the_stored_snapshot_and_asks_for_one_after_a_gap(
    holder_store: KvRelayStore,
    follower_parts: tuple[KvRelayStore, KvBlockIndex, list[str]],
    relay_config: StateConfig,
) -> None:
    store, index, errors = follower_parts
    await holder_store.append("w1", batch(1, 1, is_snapshot=True))
    await holder_store.append("w1", batch(2, 2))
    follower = KvStreamFollower(store, RedisGuard(relay_config, errors.append), index, relay_config)
    task = asyncio.create_task(follower.run(["w1"]))
    try:
        await wait_until(lambda: holds(index, 1) and holds(index, 2))
        await holder_store.append("w1", batch(5, 5))  # events 3 and 4 never came

        async def snapshot_wanted() -> bool:
            claim = await holder_store.claim(["w1"])  # what the holder checks every renewal
            return claim["w1"].is_snapshot_wanted

        await eventually(snapshot_wanted)
        assert not holds(index, 5)
        await holder_store.append("w1", batch(5, 1, 2, 5, is_snapshot=True))
        await wait_until(lambda: holds(index, 1, 2, 5))
        assert follower.places["w1"].is_in_step and errors == []
    finally:
        await cancel_and_wait(task)


@pytest.mark.asyncio
async def test_returns_when_redis_fails_so_the_relay_can_follow_directly(
    private_redis: RedisServer, relay_config: StateConfig
) -> None:
    redis = connect_redis(private_redis.url, relay_config, timeout_s=0.5, decode_responses=False)
    errors: list[str] = []
    store = KvRelayStore(redis, "follower", relay_config)
    follower = KvStreamFollower(
        store, RedisGuard(relay_config, errors.append), KvBlockIndex(), relay_config
    )
    task = asyncio.create_task(follower.run(["w1"]))
    try:
        # No holder wrote a snapshot: the follower asked for one, so it talked to Redis.
        await wait_until(
            lambda: "w1" in follower.places and follower.places["w1"].wanted_at_s is not None
        )
        private_redis.stop()
        await asyncio.wait_for(task, timeout=5.0)
        assert errors and errors[0].startswith("kv_relay.")
    finally:
        await cancel_and_wait(task)
        await redis.aclose()
