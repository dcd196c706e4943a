"""Sibling links over real Unix sockets, two or three buses in one event loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.types import Stage
from triskel.router.siblings import SiblingBus, SiblingsConfig, frames
from triskel.router.siblings.frames import LoadShare, SharedPick
from triskel.router.state.protocols import LoadCounts

from support.siblings import buses, until

PICK = SharedPick(
    request_id="r1",
    model="m",
    stage=Stage.PREFILL,
    worker_id="w2",
    token_ids=[1, 2, 3],
    block_hashes=[BlockHash(2**64 - 1), BlockHash(7)],
    max_tokens=16,
    headers={"x-session": "s"},
)


@pytest.mark.asyncio
async def test_a_pick_reaches_every_other_sibling(tmp_path: Path) -> None:
    async with buses(tmp_path, 3) as (first, second, third):
        got: list[tuple[int, int, SharedPick]] = []
        second.on_pick(lambda sender, pick: got.append((1, sender, pick)))
        third.on_pick(lambda sender, pick: got.append((2, sender, pick)))
        first.on_pick(lambda sender, pick: got.append((0, sender, pick)))
        first.send(frames.shared_pick(PICK))
        await until(lambda: len(got) == 2)
        assert sorted((receiver, sender) for receiver, sender, _ in got) == [(1, 0), (2, 0)]
        assert all(pick == PICK for _, _, pick in got)
        assert first.dropped == 0


@pytest.mark.asyncio
async def test_a_sibling_that_goes_away_is_reported_and_relinked(tmp_path: Path) -> None:
    async with buses(tmp_path, 2) as (first, second):
        gone: list[int] = []
        connected: list[int] = []
        first.on_gone(gone.append)
        first.on_connected(connected.append)
        await second.aclose()
        await until(lambda: gone == [1])
        # Nobody listens for it now: frames to it are dropped and counted, not queued.
        await until(lambda: not first._writers)
        first.send(frames.load_share(LoadShare("w", LoadCounts(1, 2, 3))))
        assert first.dropped == 1
        again = SiblingBus(SiblingsConfig(index=1, count=2, directory=tmp_path))
        await again.start()
        try:
            await until(lambda: connected == [1])
            told: list[LoadShare] = []
            again.on_load(lambda _sender, share: told.append(share))
            first.send(frames.load_share(LoadShare("w", LoadCounts(1, 2, 3))))
            await until(lambda: told == [LoadShare("w", LoadCounts(1, 2, 3))])
        finally:
            await again.aclose()


@pytest.mark.asyncio
async def test_a_bad_frame_closes_the_link_and_is_not_applied(tmp_path: Path) -> None:
    async with buses(tmp_path, 2) as (first, second):
        gone: list[int] = []
        told: list[LoadShare] = []
        second.on_gone(gone.append)
        second.on_load(lambda _sender, share: told.append(share))
        first.send(frames.LENGTH.pack(3) + frames.LOAD + b"{]")
        await until(lambda: gone == [0])
        assert told == []


@pytest.mark.asyncio
async def test_drops_are_reported_to_the_callback(tmp_path: Path) -> None:
    reported: list[int] = []
    lonely = SiblingBus(
        SiblingsConfig(index=0, count=3, directory=tmp_path), on_dropped=reported.append
    )
    await lonely.start()
    try:
        lonely.send(frames.hello(0))  # neither sibling listens: both copies are lost
        assert lonely.dropped == 2 and reported == [1, 1]
    finally:
        await lonely.aclose()
