"""A request's CPU-heavy steps (parsing a large body, tokenizing a long prompt) run in a
thread when they are large, so the event loop keeps answering `/health` and streaming
other requests' tokens meanwhile.

Pure-Python work in a thread still takes the GIL, but the interpreter hands it back to
the loop every switch interval (5 ms): a second of tokenizing delays the loop by
milliseconds at a time, not by the second. Steps shorter than a few tens of
milliseconds stay inline (see the limits below for why).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Sizes under which a step stays on the loop. A thread is no free lunch: while it holds
# the GIL, the loop waits up to the switch interval (5 ms) for it at every turn, so a
# thread that tokenizes for 12 ms costs every stream on the loop a few milliseconds and
# the request itself more (live TTFT +17%, TPOT +21% against the simulator with prompts
# of 30,000 characters sent to a thread, tests/simulator/test_fidelity.py). So only
# steps long enough to stall the loop for tens of milliseconds go to a thread: prompts
# beyond 64 Ki characters (~25 ms with the mock tokenizer, 2-3 characters a
# microsecond). Bodies are parsed by orjson, which holds the GIL for the whole parse:
# a thread would not free the loop at all, so only bodies beyond 4 MiB (a few ms) go.
INLINE_BODY_BYTES = 4 * 1024 * 1024
INLINE_PROMPT_CHARS = 64 * 1024


async def off_loop_if_large(size: int, inline_limit: int, work: Callable[[], T]) -> T:
    """`work()`: inline when `size` is at most `inline_limit`, else in a worker thread.
    `work` must not touch the event loop (it may run in another thread)."""
    if size <= inline_limit:
        return work()
    return await asyncio.to_thread(work)
