"""open_state picks the backend from the router's --redis-url."""

from __future__ import annotations

import pytest

from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.state import KvRelay, StateConfig, connect_redis, open_kv_relay, open_state
from triskel.router.state.memory import MemoryState
from triskel.router.state.resilient import ResilientState


@pytest.mark.asyncio
async def test_no_url_gives_local_state() -> None:
    state = open_state(None, router_id="r1")
    assert isinstance(state, MemoryState)


@pytest.mark.asyncio
async def test_a_url_gives_redis_state_with_fallback(redis_url: str) -> None:
    state = open_state(redis_url, router_id="r1")
    try:
        assert isinstance(state, ResilientState)
    finally:
        await state.aclose()


@pytest.mark.parametrize("bad_url", ["localhost:6379", "http://127.0.0.1:6379"])
def test_a_bad_url_names_the_value(bad_url: str) -> None:
    with pytest.raises(ValueError, match=repr(bad_url)):
        connect_redis(bad_url, StateConfig())


def test_without_a_url_there_is_no_kv_relay() -> None:
    assert open_kv_relay(None, router_id="r1", index=KvBlockIndex()) is None


@pytest.mark.asyncio
async def test_a_url_gives_a_kv_relay(redis_url: str) -> None:
    relay = open_kv_relay(redis_url, router_id="r1", index=KvBlockIndex())
    assert isinstance(relay, KvRelay)
    await relay.aclose()


@pytest.mark.asyncio
async def test_a_relay_client_returns_bytes_and_waits_out_a_blocking_read(
    redis_url: str, config: StateConfig
) -> None:
    client = connect_redis(redis_url, config, timeout_s=1.0, decode_responses=False)
    try:
        # Stream entries are serialized protobufs: replies must stay bytes.
        assert await client.echo("kv") == b"kv"
        # 200 ms: four times the default per-call bound, within this client's.
        assert not await client.xread({f"{config.key_prefix}:none": "0-0"}, block=200)
    finally:
        await client.aclose()
