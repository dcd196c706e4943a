"""A generation's stop sequences, applied by the router for every backend and both fronts.

The answer ends before the first stop string (not shown) with finish reason "stop", and
closing the worker's stream there cancels the rest of the generation on the worker.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from triskel.common.stop_sequences import StopMatcher
from triskel.router.types import FinishEvent, GenerationEvent, TokenEvent


async def with_stops(
    events: AsyncGenerator[GenerationEvent, None], stops: tuple[str, ...], num_prompt_tokens: int
) -> AsyncGenerator[GenerationEvent, None]:
    """`events` cut at the first stop string; unchanged when `stops` is empty."""
    matcher = StopMatcher(stops)
    num_tokens = 0
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, TokenEvent):
                num_tokens += len(event.token_ids)
                yield TokenEvent(matcher.feed(event.text), event.token_ids)
                if matcher.is_stopped:
                    # Cached prompt tokens are told only by a finished worker call.
                    yield FinishEvent("stop", num_prompt_tokens, num_tokens, 0)
                    return
            elif isinstance(event, FinishEvent):
                held = matcher.flush()
                if held:
                    yield TokenEvent(held, ())
                yield event
            else:
                yield event
