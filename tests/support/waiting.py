"""Wait on a condition with a deadline (never a bare sleep-and-hope)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Polls `condition` until true; AssertionError after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    # Polling is the point here: the condition lives in another component's state.
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)


async def cancel_and_wait(task: asyncio.Task[None], timeout_s: float = 5.0) -> None:
    """Cancels `task` and waits for it to end; AssertionError if it is still running."""
    task.cancel()
    await asyncio.wait([task], timeout=timeout_s)
    assert task.done(), f"{task.get_name()} ignored its cancellation for {timeout_s} s"
