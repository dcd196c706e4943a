"""Bootstrap rooms: either side may come first, failures and stops reach the waiters,
and nothing stays behind."""

from __future__ import annotations

import asyncio

import pytest

from triskel.workers.openai_http.rooms import BootstrapRooms, PublishedPrefill, RoomFailed

from support.waiting import wait_until

PREFILL = PublishedPrefill(
    num_prompt_tokens=40,
    first_token_id=7,
    num_cached_tokens=0,
    finish_reason=None,
    kv_transfer_params={"do_remote_prefill": True},
)


@pytest.mark.asyncio
async def test_a_waiter_gets_a_room_published_later() -> None:
    rooms = BootstrapRooms(ttl_s=30)
    waiter = asyncio.create_task(rooms.wait(5, timeout_s=10))
    await wait_until(lambda: len(rooms) == 1)
    rooms.publish(5, PREFILL)
    assert await waiter == PREFILL


@pytest.mark.asyncio
async def test_a_room_published_first_is_there_for_the_waiter() -> None:
    rooms = BootstrapRooms(ttl_s=30)
    rooms.publish(5, PREFILL)
    assert await rooms.wait(5, timeout_s=0) == PREFILL


@pytest.mark.asyncio
async def test_a_failed_prefill_reaches_the_waiter_with_its_reason() -> None:
    rooms = BootstrapRooms(ttl_s=30)
    waiter = asyncio.create_task(rooms.wait(5, timeout_s=10))
    await wait_until(lambda: len(rooms) == 1)
    rooms.fail(5, RoomFailed("max_tokens: too many", 400, "max_tokens"))
    with pytest.raises(RoomFailed, match="max_tokens: too many") as raised:
        await waiter
    assert (raised.value.status, raised.value.param) == (400, "max_tokens")


@pytest.mark.asyncio
async def test_a_waiter_that_gives_up_leaves_nothing_behind() -> None:
    rooms = BootstrapRooms(ttl_s=30)
    with pytest.raises(TimeoutError):
        await rooms.wait(5, timeout_s=0.01)
    assert len(rooms) == 0


@pytest.mark.asyncio
async def test_one_waiter_giving_up_does_not_cancel_the_room_for_another() -> None:
    rooms = BootstrapRooms(ttl_s=30)
    patient = asyncio.create_task(rooms.wait(5, timeout_s=10))
    with pytest.raises(TimeoutError):
        await rooms.wait(5, timeout_s=0.01)
    rooms.publish(5, PREFILL)
    assert await patient == PREFILL


@pytest.mark.asyncio
async def test_published_rooms_are_forgotten_after_the_hold_time() -> None:
    rooms = BootstrapRooms(ttl_s=0.02)
    rooms.publish(5, PREFILL)
    rooms.fail(6, RoomFailed("nobody waits for this failure"))
    await wait_until(lambda: len(rooms) == 0)


@pytest.mark.asyncio
async def test_closing_fails_every_waiter_and_later_waits() -> None:
    rooms = BootstrapRooms(ttl_s=30)
    waiter = asyncio.create_task(rooms.wait(5, timeout_s=10))
    await wait_until(lambda: len(rooms) == 1)
    rooms.close("the prefill worker is stopping")
    with pytest.raises(RoomFailed, match="stopping"):
        await waiter
    with pytest.raises(RoomFailed, match="stopping"):
        await rooms.wait(6, timeout_s=10)
    assert len(rooms) == 0


@pytest.mark.asyncio
async def test_a_republished_room_holds_the_newer_prefill() -> None:
    rooms = BootstrapRooms(ttl_s=30)
    rooms.fail(5, RoomFailed("first attempt failed"))
    rooms.publish(5, PREFILL)
    assert await rooms.wait(5, timeout_s=0) == PREFILL


@pytest.mark.parametrize(
    "edit",
    [
        {"first_token_id": -1},
        {"num_prompt_tokens": "40"},
        {"finish_reason": 3},
        # Exactly one of a KV handle and a finish reason.
        {"finish_reason": "stop"},
        {"kv_transfer_params": None},
    ],
)
def test_malformed_rooms_are_refused(edit: dict[str, object]) -> None:
    assert PublishedPrefill.from_json(PREFILL.json()) == PREFILL
    with pytest.raises(ValueError):
        PublishedPrefill.from_json({**PREFILL.json(), **edit})
