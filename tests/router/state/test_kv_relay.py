"""KvRelay end to end: router replicas, fake workers on loopback and a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
import pytest_asyncio

from triskel.common.hashing import BlockHash
from triskel.common.kv_tiers import KvMedium
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.state import KvRelay, StateConfig, open_kv_relay
from triskel.v1 import worker_pb2

from support.kv_event_worker import FakeKvWorker
from support.redis_server import RedisServer
from support.waiting import cancel_and_wait, wait_until

StartWorker = Callable[[str], Awaitable[FakeKvWorker]]


class Replica:
    """One router replica: its relay, its own index, the Redis errors it counted."""

    def __init__(self, router_id: str, redis_url: str, config: StateConfig) -> None:
        self.index = KvBlockIndex()
        self.errors: list[str] = []
        relay = open_kv_relay(
            redis_url,
            router_id=router_id,
            index=self.index,
            config=config,
            on_redis_error=self.errors.append,
        )
        assert relay is not None
        self.relay: KvRelay = relay
        self.follows: dict[str, asyncio.Task[None]] = {}
        self.is_closed = False

    async def start(self, workers: Sequence[FakeKvWorker]) -> Replica:
        await self.relay.start()
        for worker in workers:
            self.follow(worker)
        return self

    def follow(self, worker: FakeKvWorker) -> None:
        self.follows[worker.worker_id] = asyncio.create_task(self.relay.follow(worker.source()))

    async def unfollow(self, worker_id: str) -> None:
        """As the cluster view does when a worker leaves the deployment."""
        await cancel_and_wait(self.follows.pop(worker_id))
        self.index.remove_worker(worker_id)

    def holds(self, worker_id: str, *chain: int) -> bool:
        hashes = [BlockHash(h) for h in chain]
        return self.index.match_lengths(hashes, [worker_id]) == [len(chain)]

    def tiers(self, worker_id: str, *chain: int) -> tuple[int, int]:
        """(GPU, host) blocks of `chain` the index places on `worker_id`."""
        return self.index.match_tiers([BlockHash(h) for h in chain], [worker_id])[0]

    async def crash(self) -> None:
        """Stops without giving up its leases, as a killed process would."""
        for task in self.follows.values():
            await cancel_and_wait(task)
        await self.relay.stop()

    async def close(self) -> None:
        if not self.is_closed:
            self.is_closed = True
            await self.crash()
            await self.relay.aclose()


OpenReplica = Callable[[str, Sequence[FakeKvWorker]], Awaitable[Replica]]


@contextlib.asynccontextmanager
async def replicas_on(redis_url: str, config: StateConfig) -> AsyncIterator[OpenReplica]:
    replicas: list[Replica] = []

    async def open_replica(router_id: str, workers: Sequence[FakeKvWorker]) -> Replica:
        replicas.append(Replica(router_id, redis_url, config))
        return await replicas[-1].start(workers)

    try:
        yield open_replica
    finally:
        for replica in replicas:
            await replica.close()


@pytest_asyncio.fixture
async def open_replica(redis_url: str, relay_config: StateConfig) -> AsyncIterator[OpenReplica]:
    async with replicas_on(redis_url, relay_config) as open_replica:
        yield open_replica


@pytest_asyncio.fixture
async def open_private_replica(
    private_redis: RedisServer, relay_config: StateConfig
) -> AsyncIterator[OpenReplica]:
    async with replicas_on(private_redis.url, relay_config) as open_replica:
        yield open_replica


@pytest.mark.asyncio
async def test_two_replicas_converge_while_each_worker_serves_one_subscription(
    start_kv_worker: StartWorker, open_replica: OpenReplica
) -> None:
    w1, w2 = await start_kv_worker("w1"), await start_kv_worker("w2")
    w1.store(1, 2)  # cached before any router came: only a snapshot can tell
    a, b = await open_replica("router-a", [w1, w2]), await open_replica("router-b", [w1, w2])
    await wait_until(lambda: a.holds("w1", 1, 2) and b.holds("w1", 1, 2))

    w1.store(1, 2, 3)
    w2.store(7)
    w1.clear()
    w1.store(4, 5)
    await wait_until(lambda: a.holds("w1", 4, 5) and b.holds("w1", 4, 5) and b.holds("w2", 7))
    for replica in (a, b):
        assert not replica.holds("w1", 1)  # cleared, on every replica
        assert replica.index.num_blocks("w1") == 2
    # However many routers, each worker fed one subscription, through one holder each.
    assert (w1.num_subscriptions, w2.num_subscriptions) == (1, 1)
    assert (w1.num_subscribers, w2.num_subscribers) == (1, 1)
    held = a.relay.holder.relayed_worker_ids + b.relay.holder.relayed_worker_ids
    assert sorted(held) == ["w1", "w2"]
    assert a.errors == [] and b.errors == []


@pytest.mark.asyncio
async def test_a_replica_started_later_catches_up_from_the_stored_snapshot(
    start_kv_worker: StartWorker, open_replica: OpenReplica
) -> None:
    w1 = await start_kv_worker("w1")
    a = await open_replica("router-a", [w1])
    w1.store(1, 2)
    w1.store(3)
    await wait_until(lambda: a.holds("w1", 1, 2) and a.holds("w1", 3))

    late = await open_replica("router-late", [w1])
    await wait_until(lambda: late.holds("w1", 1, 2) and late.holds("w1", 3))
    w1.store(9)
    await wait_until(lambda: late.holds("w1", 9))
    # It warmed from Redis: the worker never saw a second subscription.
    assert w1.num_subscriptions == 1


@pytest.mark.parametrize("stop", ["stop", "crash"])
@pytest.mark.asyncio
async def test_the_lease_moves_to_another_replica_when_the_holder_stops(
    start_kv_worker: StartWorker, open_replica: OpenReplica, stop: str
) -> None:
    w1 = await start_kv_worker("w1")
    a = await open_replica("router-a", [w1])
    await wait_until(lambda: a.relay.holder.relayed_worker_ids == ["w1"])
    b = await open_replica("router-b", [w1])
    w1.store(1)
    await wait_until(lambda: b.holds("w1", 1))
    assert b.relay.holder.relayed_worker_ids == []

    # "stop" gives the lease up at once; "crash" leaves it to expire (1 s).
    await (a.close() if stop == "stop" else a.crash())
    await wait_until(lambda: b.relay.holder.relayed_worker_ids == ["w1"], timeout_s=5.0)
    w1.store(2)
    await wait_until(lambda: b.holds("w1", 2))
    assert b.holds("w1", 1)  # the new holder's snapshot still has the earlier block
    assert (w1.num_subscriptions, w1.num_subscribers) == (2, 1)


@pytest.mark.asyncio
async def test_a_gap_brings_every_replica_a_fresh_snapshot(
    start_kv_worker: StartWorker, open_replica: OpenReplica
) -> None:
    w1 = await start_kv_worker("w1")
    a, b = await open_replica("router-a", [w1]), await open_replica("router-b", [w1])
    w1.store(1)
    await wait_until(lambda: a.holds("w1", 1) and b.holds("w1", 1))

    w1.skip_events(3)  # events lost between the worker and the holder
    w1.store(2)  # refused by every replica: its id does not follow
    w1.store(3)
    # A replica asks for a snapshot; the holder resubscribes; all get the blocks back.
    await wait_until(lambda: all(r.holds("w1", 2) and r.holds("w1", 3) for r in (a, b)))
    assert (w1.num_subscriptions, w1.num_subscribers) == (2, 1)
    w1.store(4)  # and live events flow again after the snapshot
    await wait_until(lambda: a.holds("w1", 4) and b.holds("w1", 4))


@pytest.mark.asyncio
async def test_without_redis_each_replica_follows_directly_and_returns_to_the_relay(
    private_redis: RedisServer, start_kv_worker: StartWorker, open_private_replica: OpenReplica
) -> None:
    w1 = await start_kv_worker("w1")
    a = await open_private_replica("router-a", [w1])
    b = await open_private_replica("router-b", [w1])
    w1.store(1)
    await wait_until(lambda: a.holds("w1", 1) and b.holds("w1", 1))
    assert w1.num_subscribers == 1

    private_redis.stop()
    # Both fall back to today's path: one direct subscription each.
    await wait_until(lambda: a.relay.is_direct and b.relay.is_direct)
    await wait_until(lambda: w1.num_subscribers == 2)
    assert a.errors and b.errors  # counted for triskel_redis_errors_total
    w1.store(2)
    await wait_until(lambda: a.holds("w1", 2) and b.holds("w1", 2))
    assert a.holds("w1", 1) and b.holds("w1", 1)

    private_redis.start()  # the same port, empty: no lease, no stream, no snapshot
    await wait_until(lambda: not a.relay.is_direct and not b.relay.is_direct, timeout_s=10.0)
    await wait_until(lambda: w1.num_subscribers == 1, timeout_s=10.0)
    num_errors = len(a.errors) + len(b.errors)
    w1.store(3)
    await wait_until(lambda: a.holds("w1", 3) and b.holds("w1", 3))
    assert all(r.holds("w1", 1) and r.holds("w1", 2) for r in (a, b))
    assert len(a.errors) + len(b.errors) == num_errors


@pytest.mark.asyncio
async def test_workers_join_and_leave_while_the_relay_runs(
    start_kv_worker: StartWorker, open_replica: OpenReplica
) -> None:
    w1, w2 = await start_kv_worker("w1"), await start_kv_worker("w2")
    a = await open_replica("router-a", [w1])
    b = await open_replica("router-b", [w1])
    w2.store(7)
    a.follow(w2)  # discovery found w2 on both replicas
    b.follow(w2)
    await wait_until(lambda: a.holds("w2", 7) and b.holds("w2", 7))
    assert w2.num_subscribers == 1

    holder, other = (a, b) if a.relay.holder.relayed_worker_ids == ["w1", "w2"] else (b, a)
    await holder.unfollow("w2")
    # The holder gives w2 up at once; the replica still following it takes it over.
    await wait_until(lambda: other.relay.holder.relayed_worker_ids == ["w2"])
    w2.store(8)
    await wait_until(lambda: other.holds("w2", 8))
    assert holder.index.num_blocks("w2") == 0  # nothing applied for a worker that left
    assert w2.num_subscribers == 1


@pytest.mark.asyncio
async def test_the_host_tier_survives_the_relay_live_and_in_the_stored_snapshot(
    start_kv_worker: StartWorker, open_replica: OpenReplica
) -> None:
    w1 = await start_kv_worker("w1")
    w1.store(1, 2)
    w1.store(1, 2, 3, 4, medium=worker_pb2.KV_MEDIUM_HOST)  # in the first snapshot
    a = await open_replica("router-a", [w1])
    await wait_until(lambda: a.tiers("w1", 1, 2, 3, 4, 5) == (2, 2))
    w1.store(5, medium=worker_pb2.KV_MEDIUM_HOST)  # live, through the stream
    await wait_until(lambda: a.tiers("w1", 1, 2, 3, 4, 5) == (2, 3))

    # A replica started later warms from the snapshot Redis stored, media included.
    late = await open_replica("router-late", [w1])
    await wait_until(lambda: late.tiers("w1", 1, 2, 3, 4, 5) == (2, 3))
    assert late.index.num_blocks("w1", KvMedium.HOST) == 5
    assert w1.num_subscriptions == 1
    w1.store(6, medium=worker_pb2.KV_MEDIUM_HOST)
    await wait_until(lambda: late.index.num_blocks("w1", KvMedium.HOST) == 6)
