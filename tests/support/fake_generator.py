"""A `Generator` with scripted behaviour, for testing the router's fronts without workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from triskel.router.types import (
    FinishEvent,
    GenerationEvent,
    GenerationRequest,
    ModelCard,
    RequestError,
    TokenEvent,
)

MODEL = "m"


@dataclass
class FakeGenerator:
    """Yields `tokens` then a FinishEvent; fails with `error` just before token `fail_at`.

    `endless` yields tokens forever (paced), `hang` waits forever before the first event:
    both model a long generation the client may walk away from. `finish_follows` marks
    the last token as a worker's backend does when the finish came with it.
    """

    tokens: tuple[str, ...] = ("Hello", ",", " world")
    error: Exception | None = None
    fail_at: int = 0
    endless: bool = False
    hang: bool = False
    finish_reason: str = "length"
    first_token_id: int = 0
    finish_follows: bool = False
    requests: list[GenerationRequest] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    closed_early: asyncio.Event = field(default_factory=asyncio.Event)

    def models(self) -> list[ModelCard]:
        return [ModelCard(MODEL, 4096)]

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        self.requests.append(request)
        self.started.set()
        try:
            if request.model != MODEL:
                raise RequestError("model", f"unknown model {request.model!r}; served: {MODEL}")
            if self.hang:
                await asyncio.Event().wait()
            index = 0
            while self.endless or index < len(self.tokens):
                if self.error is not None and index == self.fail_at:
                    raise self.error
                if self.endless:
                    await asyncio.sleep(0.01)  # pacing, like a decode step
                token_id = self.first_token_id + index
                is_last = not self.endless and index == len(self.tokens) - 1
                yield TokenEvent(
                    self.tokens[index % len(self.tokens)],
                    (token_id,),
                    finish_follows=self.finish_follows and is_last,
                )
                index += 1
            if self.error is not None and self.fail_at >= len(self.tokens):
                raise self.error
            yield FinishEvent(
                self.finish_reason, prompt_tokens=7, completion_tokens=index, cached_prompt_tokens=3
            )
        except (GeneratorExit, asyncio.CancelledError):
            self.closed_early.set()
            raise
