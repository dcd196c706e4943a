"""Stop sequences on the router: the answer ends before the stop string, and its usage
still counts the prompt tokens the worker had cached."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from triskel.router.stops import with_stops
from triskel.router.types import FinishEvent, GenerationEvent, TokenEvent


async def stream(*events: GenerationEvent) -> AsyncGenerator[GenerationEvent, None]:
    for event in events:
        yield event


async def cut(events: AsyncGenerator[GenerationEvent, None]) -> list[GenerationEvent]:
    return [event async for event in with_stops(events, (" STOP",), num_prompt_tokens=40)]


@pytest.mark.asyncio
async def test_a_stop_ends_the_answer_with_the_cached_tokens_the_worker_told() -> None:
    # Finding: usage.prompt_tokens_details.cached_tokens was 0 after a stop, the worker's
    # finish (which tells them) never coming.
    events = await cut(
        stream(
            TokenEvent(" one", (1,), cached_prompt_tokens=32),
            TokenEvent(" two", (2,)),
            TokenEvent(" STOP", (3,)),
            TokenEvent(" never", (4,)),
        )
    )
    *tokens, finish = events
    assert "".join(t.text for t in tokens if isinstance(t, TokenEvent)) == " one two"
    assert finish == FinishEvent("stop", 40, 3, 32)


@pytest.mark.asyncio
async def test_a_later_count_replaces_an_earlier_one() -> None:
    # A retry on another worker tells its own count, as its finish would.
    events = await cut(
        stream(
            TokenEvent(" one", (1,), cached_prompt_tokens=16),
            TokenEvent(" two", (2,), cached_prompt_tokens=32),
            TokenEvent(" STOP", (3,)),
        )
    )
    assert events[-1] == FinishEvent("stop", 40, 3, 32)


@pytest.mark.asyncio
async def test_without_a_count_the_cached_tokens_are_zero() -> None:
    # Backends that tell cached tokens only at the end (vLLM's HTTP API).
    events = await cut(stream(TokenEvent(" STOP", (1,))))
    assert events[-1] == FinishEvent("stop", 40, 1, 0)


@pytest.mark.asyncio
async def test_a_stream_without_its_stop_keeps_the_workers_finish() -> None:
    finish = FinishEvent("length", 40, 2, 16)
    events = await cut(stream(TokenEvent(" a", (1,), 16), TokenEvent(" b", (2,)), finish))
    assert events[-1] == finish
