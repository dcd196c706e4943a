"""Sibling buses (triskel.router.siblings) linked over real Unix sockets in one loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from triskel.router.siblings import SiblingBus, SiblingsConfig


@contextlib.asynccontextmanager
async def buses(directory: Path, count: int) -> AsyncIterator[list[SiblingBus]]:
    started = [
        SiblingBus(SiblingsConfig(index=i, count=count, directory=directory)) for i in range(count)
    ]
    for bus in started:
        await bus.start()
    try:
        assert all([await bus.linked(5.0) for bus in started])
        yield started
    finally:
        for bus in started:
            await bus.aclose()


async def until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not within the deadline"
        await asyncio.sleep(0.005)
