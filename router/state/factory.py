"""Builds the router's shared state: Redis-backed when a URL is given, else in memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.state.config import StateConfig
from triskel.router.state.kv_relay import KvRelay
from triskel.router.state.memory import MemoryState
from triskel.router.state.protocols import SharedState
from triskel.router.state.resilient import ResilientState


def connect_redis(
    redis_url: str,
    config: StateConfig,
    *,
    timeout_s: float | None = None,
    decode_responses: bool = True,
    password: str | None = None,
) -> Redis:
    """A client for `redis_url` as the Redis backends expect it (str replies, one retry).

    It connects lazily, so a Redis that is down at startup only means fallbacks.
    One immediate retry replaces a pooled connection that went stale while Redis
    restarted; beyond that the guard decides when to try again, and its deadline
    bounds both tries. Sockets time out after `timeout_s` (default: the per-call
    bound); the KV relay asks for bytes replies and a longer bound for blocking reads.
    `password` (Redis' requirepass, from `read_password_file`) authenticates each new
    connection; a password in the URL itself wins over it.
    """
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            f"redis url must start with redis://, rediss:// or unix://, got {redis_url!r}"
        )
    socket_timeout_s = config.call_timeout_s if timeout_s is None else timeout_s
    return Redis.from_url(
        redis_url,
        password=password,
        decode_responses=decode_responses,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_timeout_s,
        retry=Retry(NoBackoff(), 1),
    )


def read_password_file(path: Path) -> str:
    """Redis' password from `path` (a mounted Secret's key): the file's text without
    its trailing line break. ValueError naming the file when it is unreadable or empty."""
    try:
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {path}: {error.__class__.__name__}") from None
    if not password:
        raise ValueError(f"{path} is empty")
    return password


def open_state(
    redis_url: str | None,
    *,
    router_id: str,
    config: StateConfig | None = None,
    on_redis_error: Callable[[str], None] | None = None,
    password: str | None = None,
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
        connect_redis(redis_url, config, password=password),
        router_id,
        config,
        on_redis_error or (lambda _operation: None),
    )


def open_kv_relay(
    redis_url: str | None,
    *,
    router_id: str,
    index: KvBlockIndex,
    config: StateConfig | None = None,
    on_redis_error: Callable[[str], None] | None = None,
    password: str | None = None,
) -> KvRelay | None:
    """The relay that keeps `index` current through Redis, or None without `redis_url`.

    Call `start()` on it, then `aclose()` at exit. It gets a Redis client of its own:
    stream entries are bytes, and its blocking reads would hold the shared client's
    connections longer than that client's per-call bound.
    """
    if redis_url is None:
        return None
    config = config or StateConfig()
    redis = connect_redis(
        redis_url,
        config,
        timeout_s=config.kv_call_timeout_s,
        decode_responses=False,
        password=password,
    )
    return KvRelay(redis, router_id, config, on_redis_error or (lambda _operation: None), index)
