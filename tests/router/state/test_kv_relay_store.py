"""KvRelayStore against a real redis-server: leases, fenced appends, snapshots, trimming."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from triskel.router.state import StateConfig, connect_redis
from triskel.router.state.kv_relay_store import (
    STREAM_START,
    KvRelayStore,
    LeaseClaim,
    is_after,
)
from triskel.v1 import worker_pb2

from support.redis_server import eventually

HELD, NOT_HELD = LeaseClaim(is_held=True), LeaseClaim(is_held=False)


def snapshot(*chain: int, event_id: int = 0) -> worker_pb2.KvEventBatch:
    stored = worker_pb2.KvEvent(
        event_id=event_id, stored=worker_pb2.BlocksStored(block_hashes=chain)
    )
    return worker_pb2.KvEventBatch(worker_id="w1", events=[stored], is_snapshot=True)


def live(event_id: int, *chain: int) -> worker_pb2.KvEventBatch:
    stored = worker_pb2.KvEvent(
        event_id=event_id, stored=worker_pb2.BlocksStored(block_hashes=chain)
    )
    return worker_pb2.KvEventBatch(worker_id="w1", events=[stored])


@pytest_asyncio.fixture
async def bytes_redis(redis_url: str, relay_config: StateConfig) -> AsyncIterator[Redis]:
    redis = connect_redis(redis_url, relay_config, timeout_s=2.0, decode_responses=False)
    yield redis
    await redis.aclose()


@pytest.fixture
def store_a(bytes_redis: Redis, relay_config: StateConfig) -> KvRelayStore:
    return KvRelayStore(bytes_redis, "router-a", relay_config)


@pytest.fixture
def store_b(bytes_redis: Redis, relay_config: StateConfig) -> KvRelayStore:
    return KvRelayStore(bytes_redis, "router-b", relay_config)


@pytest.mark.parametrize(
    ("entry_id", "other_id", "expected"),
    [
        ("5-0", "0-0", True),
        # Compared as numbers: "10-0" sorts before "9-0" as text.
        ("10-0", "9-0", True),
        ("7-2", "7-10", False),
        ("7-3", "7-3", False),
    ],
)
def test_is_after_compares_stream_ids_as_numbers(
    entry_id: str, other_id: str, expected: bool
) -> None:
    assert is_after(entry_id, other_id) is expected


@pytest.mark.asyncio
async def test_one_replica_holds_a_lease_until_it_releases_it(
    store_a: KvRelayStore, store_b: KvRelayStore
) -> None:
    assert await store_a.claim(["w1", "w2"]) == {"w1": HELD, "w2": HELD}
    assert await store_b.claim(["w1", "w2", "w3"]) == {"w1": NOT_HELD, "w2": NOT_HELD, "w3": HELD}
    assert await store_a.claim(["w1"]) == {"w1": HELD}  # a renewal
    await store_b.release(["w1", "w3"])  # w1 is not b's: left alone
    assert await store_a.claim(["w1", "w3"]) == {"w1": HELD, "w3": HELD}
    await store_a.release(["w1"])
    assert await store_b.claim(["w1"]) == {"w1": HELD}


@pytest.mark.asyncio
async def test_a_lease_not_renewed_expires(
    bytes_redis: Redis, relay_config: StateConfig, store_b: KvRelayStore
) -> None:
    short = dataclasses.replace(relay_config, kv_lease_ttl_s=0.3, kv_call_timeout_s=0.1)
    dead = KvRelayStore(bytes_redis, "router-dead", short)
    assert await dead.claim(["w1"]) == {"w1": HELD}
    assert await store_b.claim(["w1"]) == {"w1": NOT_HELD}

    async def taken_over() -> bool:
        return await store_b.claim(["w1"]) == {"w1": HELD}

    await eventually(taken_over)


@pytest.mark.asyncio
async def test_only_the_holder_appends_and_entries_chain_to_the_one_before(
    store_a: KvRelayStore, store_b: KvRelayStore
) -> None:
    await store_a.claim(["w1"])
    assert await store_a.append("w1", snapshot(1, 2, event_id=4))
    assert not await store_b.append("w1", live(5, 9))  # b holds no lease: refused
    assert await store_a.append("w1", live(5, 3))
    assert await store_a.append("w1", None)  # the holder lost the worker

    entries = (await store_b.read({"w1": STREAM_START}, 0.05, 10))["w1"]
    assert [e.prev_id for e in entries] == [STREAM_START, entries[0].entry_id, entries[1].entry_id]
    assert entries[0].batch == snapshot(1, 2, event_id=4)
    assert entries[1].batch == live(5, 3)
    assert entries[2].batch is None
    # Reading from the last entry waits for new ones (none here).
    assert await store_b.read({"w1": entries[-1].entry_id}, 0.05, 10) == {}


@pytest.mark.asyncio
async def test_the_newest_snapshot_is_stored_with_its_entry_id(
    store_a: KvRelayStore, store_b: KvRelayStore
) -> None:
    assert await store_b.snapshots(["w1"]) == {"w1": None}
    await store_a.claim(["w1"])
    await store_a.append("w1", snapshot(1))
    await store_a.append("w1", live(1, 2))
    await store_a.append("w1", snapshot(1, 2, event_id=1))  # a later subscription's
    entries = (await store_b.read({"w1": STREAM_START}, 0.05, 10))["w1"]
    stored = (await store_b.snapshots(["w1"]))["w1"]
    assert stored is not None
    assert (stored.entry_id, stored.batch) == (entries[2].entry_id, snapshot(1, 2, event_id=1))


@pytest.mark.asyncio
async def test_a_snapshot_request_reaches_the_holder_once(
    store_a: KvRelayStore, store_b: KvRelayStore
) -> None:
    await store_a.claim(["w1"])
    await store_b.want_snapshot("w1")
    # b does not hold w1, so b's claim leaves the request for the holder.
    assert await store_b.claim(["w1"]) == {"w1": NOT_HELD}
    assert await store_a.claim(["w1"]) == {"w1": LeaseClaim(is_held=True, is_snapshot_wanted=True)}
    assert await store_a.claim(["w1"]) == {"w1": HELD}


@pytest.mark.asyncio
async def test_a_stream_is_trimmed_to_about_its_max_length(
    bytes_redis: Redis, relay_config: StateConfig
) -> None:
    store = KvRelayStore(
        bytes_redis, "router-a", dataclasses.replace(relay_config, kv_stream_maxlen=10)
    )
    await store.claim(["w1"])
    for event_id in range(1, 301):
        await store.append("w1", live(event_id, event_id))
    # Approximate trimming drops whole nodes (100 entries by default), never the newest.
    length = await bytes_redis.xlen(store.key("events", "w1"))
    assert 10 <= length <= 110
    entries = (await store.read({"w1": STREAM_START}, 0.05, 200))["w1"]
    assert entries[-1].batch == live(300, 300)
    # The first entry left names an id that was trimmed: a reader there knows it missed some.
    assert entries[0].prev_id != STREAM_START
