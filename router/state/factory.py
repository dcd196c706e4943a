"""Builds the router's shared state: Redis-backed when a URL is given, else in memory."""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from triskel.router.state.config import StateConfig
from triskel.router.state.memory import MemoryState
from triskel.router.state.protocols import SharedState
from triskel.router.state.resilient import ResilientState


def connect_redis(redis_url: str, config: StateConfig) -> Redis:
    """A client for `redis_url` as the Redis backends expect it (str replies, one retry).

    It connects lazily, so a Redis that is down at startup only means fallbacks.
    One immediate retry replaces a pooled connection that went stale while Redis
    restarted; beyond that the guard decides when to try again, and its deadline
    bounds both tries.
    """
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            f"redis url must start with redis://, rediss:// or unix://, got {redis_url!r}"
        )
    return Redis.from_url(
        redis_url,
        decode_responses=True,
        socket_timeout=config.call_timeout_s,
        socket_connect_timeout=config.call_timeout_s,
        retry=Retry(NoBackoff(), 1),
    )


def open_state(
    redis_url: str | None,
    *,
    router_id: str,
    config: StateConfig | None = None,
    on_redis_error: Callable[[str], None] | None = None,
) -> SharedState:
    """Shared state for one router replica; call `start()` on it, then `aclose()` at exit.

    With `redis_url` (the router's `--redis-url`) replicas share load, membership and
    prefix history through Redis and fall back to memory while it is unreachable;
    without it each replica keeps its own. `on_redis_error(operation)` counts failed
    Redis calls (the router's `triskel_redis_errors_total`).
    """
    config = config or StateConfig()
    if redis_url is None:
        return MemoryState(config)
    return ResilientState(
        connect_redis(redis_url, config),
        router_id,
        config,
        on_redis_error or (lambda _operation: None),
    )
