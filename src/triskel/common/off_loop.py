"""A request's CPU-heavy steps (parsing a large body, tokenizing a long prompt) run in a
thread when they are large, so the event loop keeps answering `/health` and streaming
other requests' tokens meanwhile.

Pure-Python work in a thread still takes the GIL, but the interpreter hands it back to
the loop every switch interval (5 ms): a second of tokenizing delays the loop by
milliseconds, not by the second. Small steps stay inline, where a thread hop (~50 µs)
would cost more than the step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Sizes under which a step takes about a millisecond or less on the loop: parsing a
# request body of this many bytes, or encoding this many prompt characters with the mock
# tokenizer (it encodes 2-6 characters a microsecond).
INLINE_BODY_BYTES = 64 * 1024
INLINE_PROMPT_CHARS = 4 * 1024


async def off_loop_if_large(size: int, inline_limit: int, work: Callable[[], T]) -> T:
    """`work()`: inline when `size` is at most `inline_limit`, else in a worker thread.
    `work` must not touch the event loop (it may run in another thread)."""
    if size <= inline_limit:
        return work()
    return await asyncio.to_thread(work)
