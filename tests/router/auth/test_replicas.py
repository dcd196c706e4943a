"""Two router replicas sharing one real Redis, in front of a real mock worker: the
acceptance test of issue 19's auth line, over HTTP and gRPC.

Wrong key 401 / UNAUTHENTICATED; a model outside the key's list and another tenant
403 / PERMISSION_DENIED; requests per minute spent across both replicas, then 429 with
Retry-After / RESOURCE_EXHAUSTED with retry-after; x-priority capped (counted).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from triskel.router.process import RouterEndpoints, RouterProcessConfig
from triskel.v1 import router_pb2, router_pb2_grpc

from support.local_workers import local_workers, mock_pool, scrape
from support.redis_server import RedisServer, redis_server  # noqa: F401
from support.router_process import router_config, running_router

DEADLINE_S = 10.0
HTTP_KEY = "tsk_http-" + uuid.uuid4().hex
GRPC_KEY = "tsk_grpc-" + uuid.uuid4().hex
# Bucket names live in the session's Redis: unique per run.
RUN = uuid.uuid4().hex[:8]


def keys_file(path: Path) -> Path:
    def entry(name: str, key: str, per_minute: int) -> str:
        sha = hashlib.sha256(key.encode()).hexdigest()
        return (
            f"  - {{name: {name}-{RUN}, sha256: {sha}, tenant: acme, models: [m], "
            f"maxPriority: 2, rateLimit: {{requestsPerMinute: {per_minute}}}}}\n"
        )

    path.write_text("keys:\n" + entry("http", HTTP_KEY, 4) + entry("grpc", GRPC_KEY, 2))
    return path


def config(
    workers: list[str], server: RedisServer, path: Path, **fields: Any
) -> RouterProcessConfig:
    return router_config(
        workers,
        **{
            "redisUrl": server.url,
            "redisCallTimeoutS": 2.0,
            "auth": {"apiKeysFile": str(path)},
            **fields,
        },
    )


async def chat(
    session: aiohttp.ClientSession,
    endpoints: RouterEndpoints,
    headers: dict[str, str],
    model: str = "m",
) -> tuple[int, dict[str, str], Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    async with session.post(
        f"http://{endpoints.http_address}/v1/chat/completions",
        json=body,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=DEADLINE_S),
    ) as reply:
        return reply.status, dict(reply.headers), await reply.json()


async def generate(
    endpoints: RouterEndpoints, metadata: tuple[tuple[str, str], ...], model: str = "m"
) -> grpc.aio.AioRpcError | None:
    async with grpc.aio.insecure_channel(endpoints.grpc_address) as channel:
        stub = router_pb2_grpc.RouterStub(channel)
        request = router_pb2.GenerateRequest(model=model, prompt="Hi", max_tokens=2)
        try:
            async for _ in stub.Generate(request, metadata=metadata, timeout=DEADLINE_S):
                pass
        except grpc.aio.AioRpcError as error:
            return error
    return None


@pytest.mark.asyncio
async def test_two_replicas_share_keys_grants_and_rate_limits(
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = keys_file(tmp_path / "keys.yaml")
    async with (
        local_workers(mock_pool("unified"), 1) as workers,
        running_router(config(workers, redis_server, path)) as first,
        running_router(config(workers, redis_server, path)) as second,
        aiohttp.ClientSession() as session,
    ):
        key = {"Authorization": f"Bearer {HTTP_KEY}"}
        status, headers, _ = await chat(session, first, {"Authorization": "Bearer tsk_wrong"})
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        status, _, body = await chat(session, second, key, model="other")
        assert status == 403 and body["error"]["param"] == "model"
        status, _, body = await chat(session, first, {**key, "x-tenant": "globex"})
        assert status == 403 and body["error"]["param"] == "x-tenant"
        # Four a minute, spent two on each replica; the fifth is refused by either.
        statuses = []
        for replica in (first, second, first, second):
            statuses.append((await chat(session, replica, {**key, "x-priority": "9"}))[0])
        assert statuses == [200, 200, 200, 200]
        for replica in (first, second):
            status, headers, body = await chat(session, replica, key)
            assert status == 429
            # One request refills in 15 s at four a minute.
            assert 1 <= int(headers["Retry-After"]) <= 15
        # Each replica lowered the two x-priority: 9 it served to the key's ceiling, 2.
        capped = ("triskel_auth_priority_capped_total", frozenset({("tenant", "acme")}))
        for replica in (first, second):
            assert (await scrape(f"http://{replica.http_address}/metrics"))[capped] == 2

        # gRPC: the same gate.
        error = await generate(first, (("authorization", "Bearer tsk_wrong"),))
        assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
        grpc_key = ("x-api-key", GRPC_KEY)
        error = await generate(second, (grpc_key,), model="other")
        assert error is not None and error.code() == grpc.StatusCode.PERMISSION_DENIED
        error = await generate(first, (grpc_key, ("x-tenant", "globex")))
        assert error is not None and error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert await generate(first, (grpc_key,)) is None
        assert await generate(second, (grpc_key,)) is None
        error = await generate(first, (grpc_key,))
        assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        retry_after = int(dict(error.trailing_metadata() or ())["retry-after"])
        assert 1 <= retry_after <= 30  # two a minute: one refills in 30 s


@pytest.mark.asyncio
async def test_leased_slices_still_end_in_429_across_replicas(
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    # 20 a minute, a tenth leased: slices of 2 requests, each replica spending its own
    # without asking Redis; one request refills in 3 s, longer than this test's requests.
    key = "tsk_lease-" + uuid.uuid4().hex
    sha = hashlib.sha256(key.encode()).hexdigest()
    path = tmp_path / "keys.yaml"
    path.write_text(
        f"keys:\n  - {{name: lease-{RUN}, sha256: {sha}, tenant: acme, "
        "rateLimit: {requestsPerMinute: 20}}\n"
    )
    auth = {"apiKeysFile": str(path), "rateLimitLease": 0.1}
    async with (
        local_workers(mock_pool("unified"), 1) as workers,
        running_router(config(workers, redis_server, path, auth=auth)) as first,
        running_router(config(workers, redis_server, path, auth=auth)) as second,
        aiohttp.ClientSession() as session,
    ):
        headers = {"Authorization": f"Bearer {key}"}
        num_served, refusals = 0, list[tuple[int, dict[str, str]]]()
        for _ in range(20):  # until both replicas refuse in turn
            refusals = []
            for replica in (first, second):
                status, reply_headers, _ = await chat(session, replica, headers)
                num_served += status == 200
                if status != 200:
                    refusals.append((status, reply_headers))
            if len(refusals) == 2:
                break
        # The bucket's 20, less what a refusing replica still held (under one each).
        assert 18 <= num_served <= 20
        for status, reply_headers in refusals:
            assert status == 429 and 1 <= int(reply_headers["Retry-After"]) <= 3


@pytest.mark.asyncio
async def test_without_auth_the_router_warns_that_it_is_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with local_workers(mock_pool("unified"), 1) as workers:
        open_config = router_config(workers)
        with caplog.at_level(logging.WARNING, logger="triskel.router.process"):
            async with running_router(open_config) as endpoints, aiohttp.ClientSession() as session:
                status, _, _ = await chat(session, endpoints, {})
                assert status == 200
    [warning] = [r for r in caplog.records if "authentication is off" in r.getMessage()]
    assert warning.levelno == logging.WARNING
