"""KvEventHolder, one claim round at a time, against a real redis-server and fake workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from triskel.router.state import StateConfig, connect_redis
from triskel.router.state.guard import RedisGuard
from triskel.router.state.kv_direct import KvEventSource
from triskel.router.state.kv_relay_holder import KvEventHolder
from triskel.router.state.kv_relay_store import STREAM_START, KvRelayStore, RelayEntry
from triskel.router.worker_client import CallFailure

from support.kv_event_worker import FakeKvWorker
from support.redis_server import eventually
from support.waiting import wait_until

StartWorker = Callable[[str], Awaitable[FakeKvWorker]]


class Holder:
    """A holder whose claim rounds the test runs, with a reader on the same streams."""

    def __init__(self, redis: Redis, router_id: str, config: StateConfig) -> None:
        self.store = KvRelayStore(redis, router_id, config)
        self.errors: list[str] = []
        self.holder = KvEventHolder(self.store, RedisGuard(config, self.errors.append), config)

    async def entries(self, worker_id: str) -> list[RelayEntry]:
        read = await self.store.read({worker_id: STREAM_START}, 0.01, 100)
        return read.get(worker_id, [])

    async def stop(self) -> None:
        """Ends every relay: a round with no workers gives them all up."""
        await self.holder.renew({})


@pytest_asyncio.fixture
async def open_holder(
    redis_url: str, relay_config: StateConfig
) -> AsyncIterator[Callable[[str], Holder]]:
    redis = connect_redis(redis_url, relay_config, timeout_s=2.0, decode_responses=False)
    holders: list[Holder] = []

    def open_holder(router_id: str) -> Holder:
        holders.append(Holder(redis, router_id, relay_config))
        return holders[-1]

    yield open_holder
    for holder in holders:
        await holder.stop()
    await redis.aclose()


@pytest.mark.asyncio
async def test_relays_the_snapshot_then_live_batches_of_a_held_worker(
    start_kv_worker: StartWorker, open_holder: Callable[[str], Holder]
) -> None:
    w1 = await start_kv_worker("w1")
    w1.store(1, 2)
    a, b = open_holder("router-a"), open_holder("router-b")
    await a.holder.renew({"w1": w1.source()})
    await b.holder.renew({"w1": w1.source()})  # a holds w1: b must not subscribe
    await wait_until(lambda: w1.num_subscribers == 1)
    w1.store(3)

    async def relayed() -> bool:
        return len(await a.entries("w1")) == 2

    await eventually(relayed)
    snapshot, live = await a.entries("w1")
    assert snapshot.batch is not None and snapshot.batch.is_snapshot
    assert [list(e.stored.block_hashes) for e in snapshot.batch.events] == [[1, 2]]
    assert live.batch is not None and list(live.batch.events[0].stored.block_hashes) == [3]
    stored = (await a.store.snapshots(["w1"]))["w1"]
    assert stored is not None and stored.entry_id == snapshot.entry_id
    assert (a.holder.relayed_worker_ids, b.holder.relayed_worker_ids) == (["w1"], [])
    assert w1.num_subscriptions == 1
    assert a.errors == [] and b.errors == []


@pytest.mark.asyncio
async def test_a_wanted_snapshot_means_a_new_subscription(
    start_kv_worker: StartWorker, open_holder: Callable[[str], Holder]
) -> None:
    w1 = await start_kv_worker("w1")
    a = open_holder("router-a")
    sources = {"w1": w1.source()}
    await a.holder.renew(sources)
    await wait_until(lambda: w1.num_subscribers == 1)
    await a.holder.renew(sources)  # nothing wanted: the subscription stays
    assert w1.num_subscriptions == 1

    await a.store.want_snapshot("w1")  # as a replica that lost its place does
    await a.holder.renew(sources)
    await wait_until(lambda: w1.num_subscriptions == 2 and w1.num_subscribers == 1)

    async def two_snapshots() -> bool:
        entries = await a.entries("w1")
        return [e.batch is not None and e.batch.is_snapshot for e in entries] == [True, True]

    await eventually(two_snapshots)


@pytest.mark.asyncio
async def test_a_broken_stream_is_reported_and_relayed_once(
    start_kv_worker: StartWorker, open_holder: Callable[[str], Holder]
) -> None:
    w1 = await start_kv_worker("w1")
    losses: list[CallFailure] = []
    a = open_holder("router-a")
    source = w1.source(lambda error: losses.append(error.failure))
    await a.holder.renew({"w1": source})

    async def snapshot_relayed() -> bool:
        return len(await a.entries("w1")) == 1

    await eventually(snapshot_relayed)
    await w1.stop()

    async def loss_relayed() -> bool:
        return [e.batch is None for e in await a.entries("w1")] == [False, True]

    await eventually(loss_relayed)
    # It keeps retrying the worker, without a "lost" entry per failed retry.
    await wait_until(lambda: len(losses) >= 3)
    assert [e.batch is None for e in await a.entries("w1")] == [False, True]


@pytest.mark.asyncio
async def test_a_worker_no_longer_followed_is_given_up_at_once(
    start_kv_worker: StartWorker, open_holder: Callable[[str], Holder]
) -> None:
    w1 = await start_kv_worker("w1")
    a, b = open_holder("router-a"), open_holder("router-b")
    sources: dict[str, KvEventSource] = {"w1": w1.source()}
    await a.holder.renew(sources)
    await wait_until(lambda: w1.num_subscribers == 1)

    await a.holder.renew({})  # w1 left a's view
    assert a.holder.relayed_worker_ids == []
    await wait_until(lambda: w1.num_subscribers == 0)
    await b.holder.renew(sources)  # its lease was released: b takes it without waiting
    assert b.holder.relayed_worker_ids == ["w1"]


@pytest.mark.asyncio
async def test_a_worker_whose_client_was_closed_ends_its_relay_without_an_error(
    start_kv_worker: StartWorker,
    open_holder: Callable[[str], Holder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A killed worker's client is closed by discovery before the next renewal lets it
    # go: resubscribing on that channel raises WorkerClosed, which used to be logged as
    # "KV relay ... failed" with a traceback.
    w1 = await start_kv_worker("w1")
    a = open_holder("router-a")
    losses: list[CallFailure] = []
    sources = {"w1": w1.source(lambda error: losses.append(error.failure))}
    await a.holder.renew(sources)
    await wait_until(lambda: w1.num_subscribers == 1)
    await w1.stop()  # killed: the stream breaks, the relay will resubscribe
    await wait_until(lambda: len(losses) >= 1)
    await w1.close()  # then discovery closes its client
    await wait_until(lambda: a.holder.relayed_worker_ids == [])
    await a.holder.renew({})
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.records
