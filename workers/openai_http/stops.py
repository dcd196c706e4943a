"""A flow cut at its first stop string, as vLLM's OpenAI server answers `stop`.

The answer ends before the stop string (not shown) with finish reason "stop"; closing
the flow there aborts the engine request, so nothing past the stop is generated. Text
that might begin a stop string is held back until the next piece settles it
(`StopMatcher`), so a streamed answer never shows what the whole one would not.
"""

from __future__ import annotations

import contextlib

from triskel.common.stop_sequences import StopMatcher
from triskel.workers.api import Tokens
from triskel.workers.openai_http.flow_events import Finished, Flow


def with_stops(events: Flow, stops: tuple[str, ...]) -> Flow:
    """`events` cut at the first of `stops`; `events` itself when there are none."""
    return _cut(events, StopMatcher(stops)) if stops else events


async def _cut(events: Flow, matcher: StopMatcher) -> Flow:
    num_tokens = 0
    # As the engine told it with its first tokens (its finish will not come).
    num_cached_tokens = 0
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, Tokens):
                num_tokens += len(event.token_ids)
                if event.num_cached_tokens is not None:
                    num_cached_tokens = event.num_cached_tokens
                yield Tokens(event.token_ids, matcher.feed(event.text), event.num_cached_tokens)
                if matcher.is_stopped:
                    yield Finished("stop", num_tokens, num_cached_tokens)
                    return
            elif isinstance(event, Finished):
                held = matcher.flush()
                if held:
                    yield Tokens((), held)
                yield event
            else:
                yield event
