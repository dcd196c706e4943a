"""Builds the router's Authenticator from its `auth` section (a thin shell: I/O here)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from triskel.router.auth.authenticator import Authenticator, AuthObserver
from triskel.router.auth.config import AuthConfig
from triskel.router.auth.jwt_verifier import JwtVerifier, signing_keys
from triskel.router.auth.key_store import KeyStore
from triskel.router.auth.keys_file import KeysFileError
from triskel.router.auth.leasing import LeasingRateLimiter
from triskel.router.auth.limiter import LocalRateLimiter, RateLimiter, SharedRateLimiter
from triskel.router.auth.redis_bucket import RedisBuckets
from triskel.router.state.config import StateConfig
from triskel.router.state.factory import connect_redis
from triskel.router.state.guard import RedisGuard
from triskel.router.types import ModelCard


class AuthSetupError(ValueError):
    """The auth section cannot be served; the message names the field."""


@dataclass(frozen=True, slots=True)
class AuthRedis:
    """The router's Redis, when it has one: rate limits are then shared by replicas."""

    url: str
    password: str | None
    call_timeout_s: float
    on_error: Callable[[str], None]


class AuthMetrics(AuthObserver, Protocol):
    """AuthObserver plus the keys file's reloads (RouterMetrics implements both)."""

    def observe_keys_reload(self, ok: bool) -> None: ...


def open_authenticator(
    config: AuthConfig,
    redis: AuthRedis | None,
    metrics: AuthMetrics,
    models: Callable[[], Sequence[ModelCard]],
) -> Authenticator:
    """The gate, its keys loaded; raises AuthSetupError naming the field. Call `start()`
    on it to watch the keys file, and `aclose()` at exit."""
    keys = None
    if config.api_keys_file is not None:
        keys = KeyStore(config.api_keys_file, metrics.observe_keys_reload)
        try:
            keys.load()
        except KeysFileError as error:
            raise AuthSetupError(f"auth.apiKeysFile: {error}") from None
    verifier = None
    if config.jwt is not None:
        try:
            verifier = JwtVerifier(config.jwt, signing_keys(config.jwt))
        except ValueError as error:
            raise AuthSetupError(f"auth.jwt.publicKeyFile: {error}") from None
    limiter = _limiter(redis, config.rate_limit_lease)
    return Authenticator(keys, verifier, limiter, metrics, models)


def _limiter(redis: AuthRedis | None, lease_fraction: float) -> RateLimiter:
    local = LocalRateLimiter()
    if redis is None:
        return local  # already in memory: nothing to lease
    state = StateConfig(call_timeout_s=redis.call_timeout_s)
    try:
        client = connect_redis(redis.url, state, password=redis.password)
    except ValueError as error:
        raise AuthSetupError(f"redis_url: {error}") from None
    guard = RedisGuard(state, redis.on_error)
    shared = SharedRateLimiter(RedisBuckets(client), guard, local)
    if lease_fraction == 0:
        return shared
    return LeasingRateLimiter(shared, lease_fraction)
