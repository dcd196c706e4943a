"""open_state picks the backend from the router's --redis-url."""

from __future__ import annotations

import pytest

from triskel.router.state import StateConfig, connect_redis, open_state
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
