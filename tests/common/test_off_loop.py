"""Large steps leave the event loop; small ones stay on it."""

from __future__ import annotations

import threading

import pytest

from triskel.common.off_loop import off_loop_if_large


@pytest.mark.parametrize(("size", "runs_on_the_loop"), [(10, True), (11, False)])
@pytest.mark.asyncio
async def test_work_over_the_inline_limit_runs_in_another_thread(
    size: int, runs_on_the_loop: bool
) -> None:
    loop_thread = threading.get_ident()
    thread = await off_loop_if_large(size, 10, threading.get_ident)
    assert (thread == loop_thread) is runs_on_the_loop


@pytest.mark.asyncio
async def test_an_error_in_the_thread_reaches_the_caller() -> None:
    def fail() -> None:
        raise ValueError("prompt: bad")

    with pytest.raises(ValueError, match="prompt: bad"):
        await off_loop_if_large(100, 10, fail)
