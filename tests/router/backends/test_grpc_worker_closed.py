"""A call on the channel of a worker that just left is a retriable UNAVAILABLE, not a crash.

Discovery closes a removed worker's channel; a request picked that worker a moment
before still calls it. grpc then raises its own UsageError ("Channel is closed"), which
the router turned into a 500 (seen in CI under a scale-in): it must be the same
WorkerCallError as a worker that is unreachable, so the request is retried elsewhere."""

from __future__ import annotations

import pytest

from triskel.router.backends.grpc_worker import GrpcWorkerClient
from triskel.router.worker_client import CallFailure, DecodeCall, PrefillCall, WorkerCallError

from support.local_workers import local_worker, mock_pool


@pytest.mark.asyncio
async def test_calls_on_a_closed_channel_are_unavailable() -> None:
    async with local_worker(mock_pool("unified")) as worker:
        client = GrpcWorkerClient(worker.endpoints.grpc)
        await client.connect(10)
        await client.close()  # what discovery does when the worker leaves
        with pytest.raises(WorkerCallError) as decoding:
            async for _ in client.decode(DecodeCall("r1", [1, 2, 3], 4, True), timeout_s=5):
                pass
        assert decoding.value.failure is CallFailure.UNAVAILABLE
        with pytest.raises(WorkerCallError) as prefilling:
            await client.prefill(PrefillCall("r2", [1, 2, 3], 4, kv_hold_ms=1000), timeout_s=5)
        assert prefilling.value.failure is CallFailure.UNAVAILABLE
        await client.cancel("r1")  # cancelling on a closed channel is a no-op, not an error
