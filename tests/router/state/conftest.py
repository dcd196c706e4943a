"""Fixtures for the shared-state tests: a real Redis, a key namespace per test, clients."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from triskel.router.state import StateConfig, connect_redis

from support.kv_event_worker import FakeKvWorker
from support.redis_server import private_redis, redis_server, redis_url  # noqa: F401

# Generous: these tests check behaviour, not speed, on a possibly busy CI machine.
TEST_CALL_TIMEOUT_S = 2.0


@pytest.fixture
def config() -> StateConfig:
    """A fresh key namespace per test; lifetimes long enough never to run out by accident.

    Expiry tests shorten the one lifetime they check with `dataclasses.replace`.
    """
    return StateConfig(
        key_prefix=f"test-{uuid.uuid4().hex[:12]}",
        load_ttl_s=30.0,
        member_ttl_s=30.0,
        prefix_ttl_s=30.0,
        heartbeat_interval_s=1.0,
        call_timeout_s=TEST_CALL_TIMEOUT_S,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )


@pytest_asyncio.fixture
async def redis_pair(redis_url: str, config: StateConfig) -> AsyncIterator[tuple[Redis, Redis]]:  # noqa: F811
    """Two clients on one Redis, as two router replicas would hold."""
    first, second = connect_redis(redis_url, config), connect_redis(redis_url, config)
    try:
        yield first, second
    finally:
        await first.aclose()
        await second.aclose()


@pytest.fixture
def relay_config(config: StateConfig) -> StateConfig:
    """KV relay lifetimes short enough for takeovers within a test, long enough for CI.

    Leases renew every third of a second, so a snapshot request is served within
    about that; a dead holder's lease expires after 1 s.
    """
    return dataclasses.replace(
        config, kv_lease_ttl_s=1.0, kv_read_block_s=0.05, kv_call_timeout_s=0.4
    )


@pytest_asyncio.fixture
async def start_kv_worker() -> AsyncIterator[Callable[[str], Awaitable[FakeKvWorker]]]:
    """Starts fake KV-event workers on loopback; all are closed after the test."""
    workers: list[FakeKvWorker] = []

    async def start(worker_id: str) -> FakeKvWorker:
        workers.append(await FakeKvWorker(worker_id).start())
        return workers[-1]

    yield start
    for worker in workers:
        await worker.close()
