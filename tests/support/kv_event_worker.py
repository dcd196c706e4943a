"""A worker that serves only `StreamKvEvents`, on 127.0.0.1:0, with events a test controls.

Like a real worker (`workers/kv_events.py`), each subscription starts with a
snapshot of every cached chain, numbered with the newest event id, then gets live
batches; unlike one, it counts subscriptions and can skip event ids to make a gap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc

from triskel.common.grpc_server import start_server
from triskel.router.backends.grpc_worker import GrpcSubscription
from triskel.router.state.kv_direct import KvEventSource
from triskel.router.worker_client import WorkerCallError
from triskel.v1 import worker_pb2, worker_pb2_grpc


def _ignore_loss(_error: WorkerCallError) -> None:
    return None


class FakeKvWorker(worker_pb2_grpc.WorkerServicer):
    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.num_subscriptions = 0  # ever opened
        # Cached chains, each with the medium (tier) holding it.
        self._chains: list[tuple[worker_pb2.KvMedium, list[int]]] = []
        self._last_event_id = 0
        self._subscribers: set[asyncio.Queue[worker_pb2.KvEventBatch]] = set()
        self._server: grpc.aio.Server | None = None
        self._channel: grpc.aio.Channel | None = None
        self.address = ""

    @property
    def num_subscribers(self) -> int:
        """Subscriptions open right now."""
        return len(self._subscribers)

    async def start(self) -> FakeKvWorker:
        self._server, port = await start_server(
            lambda server: worker_pb2_grpc.add_WorkerServicer_to_server(self, server),
            "triskel.v1.Worker",
            "127.0.0.1:0",
        )
        self.address = f"127.0.0.1:{port}"
        self._channel = grpc.aio.insecure_channel(self.address)
        return self

    async def stop(self) -> None:
        """Stops serving (open streams break); routers' channels stay, as a real worker's would."""
        if self._server is not None:
            await self._server.stop(None)
            self._server = None

    async def close(self) -> None:
        await self.stop()
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    def source(self, on_lost: Callable[[WorkerCallError], None] = _ignore_loss) -> KvEventSource:
        """How a router reaches this worker's KV events (all replicas share one channel),
        with the gRPC backend's subscription (its errors as WorkerCallError)."""
        assert self._channel is not None, "start() the worker first"
        stub = worker_pb2_grpc.WorkerStub(self._channel)
        return KvEventSource(
            self.worker_id,
            lambda: GrpcSubscription(
                lambda: stub.StreamKvEvents(worker_pb2.StreamKvEventsRequest())
            ),
            on_lost,
        )

    def store(
        self, *block_hashes: int, medium: worker_pb2.KvMedium = worker_pb2.KV_MEDIUM_GPU
    ) -> None:
        """Caches one chain of blocks in `medium` (one Stored event)."""
        self._chains.append((medium, list(block_hashes)))
        stored = worker_pb2.BlocksStored(block_hashes=block_hashes, medium=medium)
        self._publish(worker_pb2.KvEvent(stored=stored))

    def clear(self) -> None:
        """Drops the whole cache (one Cleared event)."""
        self._chains.clear()
        self._publish(worker_pb2.KvEvent(cleared=worker_pb2.AllBlocksCleared()))

    def skip_events(self, num_events: int) -> None:
        """Numbers the next event as if `num_events` were lost: a gap for every subscriber."""
        self._last_event_id += num_events

    async def StreamKvEvents(
        self, request: worker_pb2.StreamKvEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[worker_pb2.KvEventBatch]:
        queue: asyncio.Queue[worker_pb2.KvEventBatch] = asyncio.Queue()
        self._subscribers.add(queue)
        self.num_subscriptions += 1
        try:
            yield self._snapshot()
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    def _snapshot(self) -> worker_pb2.KvEventBatch:
        events = [
            worker_pb2.KvEvent(
                event_id=self._last_event_id,
                stored=worker_pb2.BlocksStored(block_hashes=chain, medium=medium),
            )
            for medium, chain in self._chains
        ]
        return worker_pb2.KvEventBatch(worker_id=self.worker_id, events=events, is_snapshot=True)

    def _publish(self, event: worker_pb2.KvEvent) -> None:
        self._last_event_id += 1
        event.event_id = self._last_event_id
        batch = worker_pb2.KvEventBatch(worker_id=self.worker_id, events=[event])
        for queue in self._subscribers:
            queue.put_nowait(batch)
