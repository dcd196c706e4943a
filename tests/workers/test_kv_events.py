"""KvEventHub and the worker's StreamKvEvents with a host KV tier: each tier's chains in
the snapshot with their medium, the medium on the wire, one event sequence."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import cast

import grpc
import pytest

from triskel.common.api import Role
from triskel.common.hashing import BlockHash, hash_blocks
from triskel.common.kv_tiers import KvMedium
from triskel.common.profiles import load_profile
from triskel.router.scheduling.producers.kv_events_feed import apply_batch
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.v1 import worker_pb2, worker_pb2_grpc
from triskel.workers.api import Engine, KvEventBatch, WorkerDescription
from triskel.workers.engine.core import EngineConfig, EngineCore, EngineRequest
from triskel.workers.engine.events import BlocksRemoved, BlocksStored
from triskel.workers.kv_events import KvEventHub
from triskel.workers.server import start_worker_server

PROFILE = load_profile("llama-3.1-8b-h100")  # blocks of 16 tokens, a 50 GB/s host link
BLOCK_SIZE = PROFILE.block_size_tokens
PROMPT_A = list(range(1000, 1000 + 10 * BLOCK_SIZE + 1))  # 10 full blocks and a token
HASHES_A = hash_blocks(PROMPT_A, BLOCK_SIZE, PROFILE.model)


def offloading_core() -> EngineCore:
    """16 GPU blocks and a 64-block host tier; prompt A ran, then was evicted to the host."""
    config = EngineConfig.from_profile(PROFILE, kv_capacity_tokens=16 * BLOCK_SIZE)
    core = EngineCore(dataclasses.replace(config, num_host_kv_blocks=64))
    for n, prompt in enumerate([PROMPT_A, *(list(range(s, s + 200)) for s in (5000, 9000))]):
        core.add_request(EngineRequest(f"r{n}", prompt, max_tokens=1, ignore_eos=True))
        while core.has_unfinished_work():
            core.step()
    assert core.num_cached_prefix_blocks(HASHES_A) == 0
    assert core.num_host_prefix_blocks(HASHES_A) == 10
    return core


def subscribe(hub: KvEventHub, core: EngineCore) -> AsyncIterator[KvEventBatch]:
    """As the mock engine subscribes: every tier's chains."""
    return hub.subscribe({medium: core.cached_block_chains(medium) for medium in KvMedium})


@pytest.mark.asyncio
async def test_the_snapshot_carries_each_tiers_chains_with_its_medium() -> None:
    core = offloading_core()
    hub = KvEventHub()
    events = core.drain_kv_events()
    hub.publish(events)
    subscription = subscribe(hub, core)
    snapshot = await anext(subscription)
    assert snapshot.is_snapshot
    # Every snapshot event carries the newest live id, whatever its tier.
    assert {e.event_id for e in snapshot.events} == {events[-1].event_id}
    for medium in KvMedium:
        chains = [e.block_hashes for e in snapshot.events if e.medium is medium]
        assert chains == [tuple(c) for c in core.cached_block_chains(medium) if c]
    assert any(e.medium is KvMedium.HOST for e in snapshot.events)
    await subscription.aclose()  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_an_engine_without_host_chains_snapshots_gpu_only() -> None:
    hub = KvEventHub()
    chain = [BlockHash(1), BlockHash(2)]
    subscription = hub.subscribe({KvMedium.GPU: [chain], KvMedium.HOST: []})
    snapshot = await anext(subscription)
    assert snapshot.events == (BlocksStored(0, tuple(chain), None, KvMedium.GPU),)
    await subscription.aclose()  # type: ignore[attr-defined]


class HubEngine:
    """Just enough of an `Engine` for StreamKvEvents: a core's chains and a hub."""

    def __init__(self, core: EngineCore, hub: KvEventHub) -> None:
        self._core = core
        self._hub = hub

    @property
    def description(self) -> WorkerDescription:
        return WorkerDescription("w-host", Role.UNIFIED, "m", "p", BLOCK_SIZE, 4096, "tcp", 16, "")

    def kv_events(self) -> AsyncIterator[KvEventBatch]:
        return subscribe(self._hub, self._core)


@pytest.mark.asyncio
async def test_the_medium_crosses_the_wire_into_the_routers_index() -> None:
    core = offloading_core()
    hub = KvEventHub()
    events = core.drain_kv_events()
    hub.publish(events)
    last_id = events[-1].event_id
    server, port = await start_worker_server(cast(Engine, HubEngine(core, hub)), "127.0.0.1:0")
    index = KvBlockIndex()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stream = worker_pb2_grpc.WorkerStub(channel).StreamKvEvents(
                worker_pb2.StreamKvEventsRequest()
            )
            batches = aiter(stream)
            snapshot = await anext(batches)
            media = {e.stored.medium for e in snapshot.events}
            assert media == {worker_pb2.KV_MEDIUM_GPU, worker_pb2.KV_MEDIUM_HOST}
            assert apply_batch(index, snapshot)
            # Prompt A sits wholly in the host tier: no GPU prefix, 10 host blocks.
            assert index.match_tiers(HASHES_A, ["w-host"]) == [(0, 10)]

            # Live: a load back of A's first two blocks (GPU stored, the host keeps its
            # copy), then the host tier drops block 9: one sequence across both media.
            head, tail = tuple(HASHES_A[:2]), (HASHES_A[9],)
            hub.publish(
                [
                    BlocksStored(last_id + 1, head, None, KvMedium.GPU),
                    BlocksRemoved(last_id + 2, tail, KvMedium.HOST),
                ]
            )
            live = await anext(batches)
            assert [e.WhichOneof("kind") for e in live.events] == ["stored", "removed"]
            assert live.events[0].stored.medium == worker_pb2.KV_MEDIUM_GPU
            assert live.events[1].removed.medium == worker_pb2.KV_MEDIUM_HOST
            assert list(live.events[1].removed.block_hashes) == list(tail)
            assert apply_batch(index, live)
            assert index.match_tiers(HASHES_A, ["w-host"]) == [(2, 7)]
            stream.cancel()
    finally:
        await server.stop(None)
