"""A Redis with requirepass (the chart's): the router's clients authenticate with the
password from --redis-password-file, and a client without it is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.exceptions import AuthenticationError, ResponseError

from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.state import (
    StateConfig,
    connect_redis,
    open_kv_relay,
    open_state,
    read_password_file,
)

from support.redis_server import REDIS_PASSWORD, RedisServer, password_redis  # noqa: F401


@pytest.mark.parametrize(
    ("text", "password"),
    [
        # `kubectl create secret --from-file` keeps the file's last line break.
        (f"{REDIS_PASSWORD}\n", REDIS_PASSWORD),
        (f"{REDIS_PASSWORD}\r\n", REDIS_PASSWORD),
        # Inner and leading spaces are part of the password.
        (" a b ", " a b "),
    ],
)
def test_the_file_gives_the_password_without_its_line_break(
    tmp_path: Path, text: str, password: str
) -> None:
    path = tmp_path / "password"
    path.write_text(text)
    assert read_password_file(path) == password


@pytest.mark.parametrize(("text", "fragment"), [(None, "cannot read"), ("\n", "is empty")])
def test_a_missing_or_empty_file_is_named(tmp_path: Path, text: str | None, fragment: str) -> None:
    path = tmp_path / "password"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError) as error:
        read_password_file(path)
    assert str(path) in str(error.value) and fragment in str(error.value)


@pytest.mark.asyncio
async def test_a_client_with_the_password_is_served_and_one_without_refused(
    password_redis: RedisServer,  # noqa: F811
) -> None:
    config = StateConfig(call_timeout_s=2.0)
    with_password = connect_redis(password_redis.url, config, password=REDIS_PASSWORD)
    without = connect_redis(password_redis.url, config)
    wrong = connect_redis(password_redis.url, config, password="guess")
    try:
        assert await with_password.ping() is True
        # NOAUTH, or a refused HELLO when the client speaks RESP3.
        with pytest.raises((ResponseError, AuthenticationError), match=r"(?i)auth"):
            await without.ping()
        with pytest.raises(AuthenticationError):
            await wrong.ping()
    finally:
        for client in (with_password, without, wrong):
            await client.aclose()


async def registered_keys(server: RedisServer, password: str | None) -> list[str]:
    """The keys one router's shared state left in Redis after registering a worker."""
    errors: list[str] = []
    state = open_state(
        server.url,
        router_id="r1",
        config=StateConfig(key_prefix=f"pw-{password is not None}", call_timeout_s=2.0),
        on_redis_error=errors.append,
        password=password,
    )
    try:
        await state.start()
        await state.members.register("m", "w1")
    finally:
        await state.aclose()
    reader = connect_redis(server.url, StateConfig(), password=REDIS_PASSWORD)
    try:
        keys = [key async for key in reader.scan_iter(match=f"pw-{password is not None}*")]
    finally:
        await reader.aclose()
    # Refused calls are counted (triskel_redis_errors_total), never silent.
    assert bool(errors) is (password is None), errors
    return keys


@pytest.mark.asyncio
async def test_shared_state_writes_with_the_password_and_is_refused_without(
    password_redis: RedisServer,  # noqa: F811
) -> None:
    assert await registered_keys(password_redis, REDIS_PASSWORD)
    # Without it the router serves from memory (as when Redis is out): nothing written.
    assert await registered_keys(password_redis, None) == []


@pytest.mark.asyncio
async def test_the_kv_relay_authenticates_too(password_redis: RedisServer) -> None:  # noqa: F811
    config = StateConfig(call_timeout_s=2.0)
    relay = open_kv_relay(
        password_redis.url,
        router_id="r1",
        index=KvBlockIndex(),
        config=config,
        password=REDIS_PASSWORD,
    )
    assert relay is not None
    try:
        client = relay._redis  # the relay's own client, as it connects
        assert await client.ping() is True
    finally:
        await relay.aclose()
