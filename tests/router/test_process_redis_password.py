"""The router process with --redis-password-file: its shared state reaches a Redis that
requires a password, and the same router without the password is refused (it counts
the refusals and serves from memory, as when Redis is out)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from triskel.router.process import RouterProcessConfig, RouterStartupError, run_router
from triskel.router.state import StateConfig, connect_redis

from support.local_workers import local_workers, mock_pool, scrape
from support.redis_server import REDIS_PASSWORD, RedisServer, password_redis  # noqa: F401
from support.router_process import router_config, running_router

ERRORS = "triskel_redis_errors_total"


async def keys_and_errors(
    config: RouterProcessConfig, server: RedisServer
) -> tuple[list[str], float]:
    """Runs the router until it is ready and has announced its worker; the keys in Redis
    and the Redis errors it counted."""
    async with running_router(config) as endpoints:
        metrics = await scrape(f"http://{endpoints.http_address}/metrics")
    reader = connect_redis(server.url, StateConfig(), password=REDIS_PASSWORD)
    try:
        keys = [key async for key in reader.scan_iter(match="triskel*")]
        await reader.flushall()
    finally:
        await reader.aclose()
    errors = sum(value for key, value in metrics.items() if key[0] == ERRORS)
    return keys, errors


def redis_router_config(
    workers: list[str], server: RedisServer, **fields: Any
) -> RouterProcessConfig:
    return router_config(workers, redisUrl=server.url, redisCallTimeoutS=2.0, **fields)


@pytest.mark.asyncio
async def test_the_router_uses_the_password_and_is_refused_without(
    password_redis: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(REDIS_PASSWORD + "\n")
    async with local_workers(mock_pool("unified"), 1) as workers:
        with_password = redis_router_config(
            workers, password_redis, redisPasswordFile=str(password_file)
        )
        keys, errors = await keys_and_errors(with_password, password_redis)
        # The worker's membership, written through the authenticated client.
        assert keys and errors == 0
        keys, errors = await keys_and_errors(
            redis_router_config(workers, password_redis), password_redis
        )
        assert keys == [] and errors > 0


@pytest.mark.asyncio
async def test_an_unreadable_password_file_stops_the_start_naming_it(tmp_path: Path) -> None:
    config = RouterProcessConfig.model_validate(
        {
            "workers": [],
            "membershipFile": str(tmp_path / "members.json"),
            "redisUrl": "redis://127.0.0.1:1",
            "redisPasswordFile": str(tmp_path / "missing"),
        }
    )
    (tmp_path / "members.json").write_text('{"formatVersion": 1, "pools": []}')
    with pytest.raises(RouterStartupError, match=r"redis_password_file: cannot read .*missing"):
        await run_router(config, lambda _endpoints: None, asyncio.Event())


def test_a_password_needs_a_redis() -> None:
    with pytest.raises(ValueError, match="redis_password_file: needs redis_url"):
        RouterProcessConfig.model_validate(
            {"workers": ["127.0.0.1:1"], "redisPasswordFile": "/run/secrets/redis"}
        )
