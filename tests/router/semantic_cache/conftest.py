"""Fixtures for the semantic cache tests: models loaded once, a real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from triskel.router.semantic.embedding import Embedder, load_embedder
from triskel.router.semantic_cache.guards import LanguageDetector
from triskel.router.semantic_cache.redis_store import RedisCacheConfig
from triskel.router.state import StateConfig, connect_redis

from support.redis_server import private_redis, redis_server, redis_url  # noqa: F401

# Generous: these tests check behaviour, not speed, on a possibly busy CI machine.
TEST_CALL_TIMEOUT_S = 2.0


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The packaged WordLlama model (~0.2 s to load)."""
    return load_embedder()


@pytest.fixture(scope="session")
def detector() -> LanguageDetector:
    """py3langid's model (~0.5 s to load)."""
    return LanguageDetector()


@pytest.fixture
def redis_cache_config() -> RedisCacheConfig:
    """A key namespace of the test's own on the session's Redis."""
    return RedisCacheConfig(key_prefix=f"test-{uuid.uuid4().hex[:12]}:cache")


@pytest_asyncio.fixture
async def connect_bytes_redis() -> AsyncIterator[Callable[[str], Redis]]:
    """Opens clients as the Redis cache store needs them (bytes replies, calls bounded);
    all are closed after the test."""
    clients: list[Redis] = []

    def connect(url: str) -> Redis:
        config = StateConfig(call_timeout_s=TEST_CALL_TIMEOUT_S)
        clients.append(connect_redis(url, config, decode_responses=False))
        return clients[-1]

    yield connect
    for client in clients:
        await client.aclose()


@pytest.fixture
def bytes_redis(redis_url: str, connect_bytes_redis: Callable[[str], Redis]) -> Redis:  # noqa: F811
    """A bytes client on the session's Redis."""
    return connect_bytes_redis(redis_url)
