"""Sibling load: each process's totals add every sibling's whole share, which ends with
its connection and is sent again whole on a new one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from triskel.router.siblings import SiblingBus, SiblingLoadLedger, SiblingsConfig
from triskel.router.state.protocols import LoadCounts

from support.siblings import buses


async def total(ledger: SiblingLoadLedger, worker_id: str) -> LoadCounts:
    return (await ledger.totals([worker_id]))[worker_id]


async def eventually(ledger: SiblingLoadLedger, worker_id: str, expected: LoadCounts) -> None:
    """`ledger`'s total on `worker_id` becomes `expected` (frames take a moment)."""
    for _ in range(400):
        if await total(ledger, worker_id) == expected:
            return
        await asyncio.sleep(0.005)
    assert await total(ledger, worker_id) == expected


@pytest.mark.asyncio
async def test_totals_add_the_siblings_shares_and_forget_a_sibling_that_left(
    tmp_path: Path,
) -> None:
    async with buses(tmp_path, 3) as (first, second, third):
        ledgers = [SiblingLoadLedger(bus) for bus in (first, second, third)]
        await ledgers[0].add("w", LoadCounts(1, 100, 0))
        await ledgers[1].add("w", LoadCounts(2, 0, 5))
        await ledgers[1].add("w", -LoadCounts(1, 0, 2))
        for ledger in ledgers:
            await eventually(ledger, "w", LoadCounts(2, 100, 3))
        # A request ends: its share goes back to zero everywhere.
        await ledgers[0].add("w", -LoadCounts(1, 100, 0))
        await eventually(ledgers[2], "w", LoadCounts(1, 0, 3))
        # The second process stops: its share leaves the others' totals.
        await second.aclose()
        await eventually(ledgers[2], "w", LoadCounts())
        await eventually(ledgers[0], "w", LoadCounts())


@pytest.mark.asyncio
async def test_a_sibling_that_starts_late_gets_the_whole_share(tmp_path: Path) -> None:
    first = SiblingBus(SiblingsConfig(index=0, count=2, directory=tmp_path))
    await first.start()
    ledger = SiblingLoadLedger(first)
    # Counted before the sibling exists: the frame is dropped, the share is not lost.
    await ledger.add("w", LoadCounts(3, 0, 0))
    assert first.dropped == 1
    late = SiblingBus(SiblingsConfig(index=1, count=2, directory=tmp_path))
    late_ledger = SiblingLoadLedger(late)
    await late.start()
    try:
        await eventually(late_ledger, "w", LoadCounts(3, 0, 0))
    finally:
        await late.aclose()
        await first.aclose()
