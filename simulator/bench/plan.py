"""What the bench will send: one request per trace request, at the trace's time. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from triskel.traces.prompt_tokens import prompt_token_ids
from triskel.traces.types import Trace


@dataclass(frozen=True, slots=True)
class BenchRequest:
    """One request to send; `send_at_s` counts from the start of the replay."""

    index: int
    send_at_s: float
    prompt_token_ids: list[int]
    # The trace's output length; the request asks for exactly this many tokens.
    num_output_tokens: int

    @property
    def num_input_tokens(self) -> int:
        return len(self.prompt_token_ids)


def plan_requests(trace: Trace, rate_scale: float = 1.0, salt: str = "") -> list[BenchRequest]:
    """The trace's requests in arrival order, arrivals divided by `rate_scale`.

    Prompts are the trace's deterministic token ids (`salt` gives another set with
    the same sharing, for a run against a router whose caches are already warm).
    Every prompt is built here, before the clock starts, so building them never
    delays a send. ValueError for a rate scale <= 0.
    """
    return [
        BenchRequest(
            index=request.index,
            send_at_s=request.arrival_s,
            prompt_token_ids=prompt_token_ids(request, salt=salt),
            num_output_tokens=request.num_output_tokens,
        )
        for request in trace.scaled(rate_scale).requests
    ]
