"""The worker's own stop sequences (its vLLM-compatible API): a stopped answer still
counts the prompt tokens the engine had cached."""

from __future__ import annotations

import pytest

from triskel.workers.api import Tokens
from triskel.workers.openai_http.flow_events import Finished, Flow
from triskel.workers.openai_http.stops import with_stops


async def flow(*events: Tokens | Finished) -> Flow:
    for event in events:
        yield event


@pytest.mark.asyncio
async def test_a_stopped_answer_reports_the_cached_tokens_of_its_first_tokens() -> None:
    # It reported 0: the engine tells them when it finishes, and the stop aborts it.
    events = with_stops(
        flow(Tokens((1,), " one", num_cached_tokens=48), Tokens((2,), " STOP"), Tokens((3,), "x")),
        (" STOP",),
    )
    collected = [event async for event in events]
    assert collected[-1] == Finished("stop", 2, 48)
    assert "".join(e.text for e in collected if isinstance(e, Tokens)) == " one"
