"""follow_directly: a router's own subscription to a fake worker on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.state.kv_direct import follow_directly
from triskel.router.worker_client import CallFailure

from support.kv_event_worker import FakeKvWorker
from support.waiting import cancel_and_wait, wait_until


class Following:
    """A worker followed directly into an index, and the losses reported."""

    def __init__(self, worker: FakeKvWorker) -> None:
        self.worker = worker
        self.index = KvBlockIndex()
        self.losses: list[CallFailure] = []
        source = worker.source(lambda error: self.losses.append(error.failure))
        self.task = asyncio.create_task(follow_directly(source, self.index))

    def num_matched(self, *chain: int) -> int:
        return self.index.match_lengths([BlockHash(h) for h in chain], [self.worker.worker_id])[0]


@pytest_asyncio.fixture
async def following(
    start_kv_worker: Callable[[str], Awaitable[FakeKvWorker]],
) -> AsyncIterator[Following]:
    worker = await start_kv_worker("w1")
    worker.store(1, 2)  # before the router subscribed: only the snapshot has it
    followed = Following(worker)
    yield followed
    await cancel_and_wait(followed.task)


@pytest.mark.asyncio
async def test_applies_the_snapshot_then_live_events(following: Following) -> None:
    await wait_until(lambda: following.num_matched(1, 2) == 2)
    following.worker.store(1, 2, 3)
    await wait_until(lambda: following.num_matched(1, 2, 3) == 3)
    following.worker.clear()
    await wait_until(lambda: following.index.num_blocks("w1") == 0)
    assert following.worker.num_subscriptions == 1


@pytest.mark.asyncio
async def test_a_gap_resubscribes_for_a_fresh_snapshot(following: Following) -> None:
    await wait_until(lambda: following.num_matched(1, 2) == 2)
    following.worker.skip_events(1)
    following.worker.store(5)  # refused: its id skips one
    # Only the second subscription's snapshot can bring block 5.
    await wait_until(lambda: following.num_matched(5) == 1)
    assert following.worker.num_subscriptions == 2
    # The refused subscription was cancelled, not left open on the worker.
    assert following.worker.num_subscribers == 1


@pytest.mark.asyncio
async def test_a_broken_stream_forgets_the_worker_and_reports_the_loss(
    following: Following,
) -> None:
    await wait_until(lambda: following.num_matched(1, 2) == 2)
    await following.worker.stop()
    # Its blocks may be gone with it; the view is told so it stops scheduling there.
    await wait_until(lambda: following.index.num_blocks("w1") == 0)
    assert following.losses and following.losses[0] is CallFailure.UNAVAILABLE


@pytest.mark.asyncio
async def test_a_worker_whose_client_was_closed_is_let_go_quietly(
    start_kv_worker: Callable[[str], Awaitable[FakeKvWorker]],
) -> None:
    # The router closes a departed worker's channel; the next subscription then raises
    # WorkerClosed (grpc: "Channel is closed"), which used to end the task with a traceback.
    worker = await start_kv_worker("w1")
    worker.store(1, 2)
    followed = Following(worker)
    await wait_until(lambda: followed.num_matched(1, 2) == 2)
    await worker.stop()  # killed: the stream breaks, the follower will resubscribe
    await wait_until(lambda: len(followed.losses) >= 1)
    await worker.close()  # then discovery closes its client
    await asyncio.wait_for(followed.task, 10)
    assert followed.task.exception() is None
    assert followed.num_matched(1, 2) == 0  # its blocks went with it
