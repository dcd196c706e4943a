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
    # As the worker told it with its first tokens (its finish will not come).
    num_cached_tokens = 0
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, TokenEvent):
                num_tokens += len(event.token_ids)
                if event.cached_prompt_tokens is not None:
                    # A migrated answer's worker counts its cache of the prompt and answer.
                    num_cached_tokens = min(event.cached_prompt_tokens, num_prompt_tokens)
                yield TokenEvent(
                    matcher.feed(event.text), event.token_ids, event.cached_prompt_tokens
                )
                if matcher.is_stopped:
                    yield FinishEvent("stop", num_prompt_tokens, num_tokens, num_cached_tokens)
                    return
            elif isinstance(event, FinishEvent):
                held = matcher.flush()
                if held:
                    yield TokenEvent(held, ())
                yield event
            else:
                yield event
