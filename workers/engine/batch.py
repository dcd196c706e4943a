"""The scheduler's decision for one step, as the model runner reads it."""

from __future__ import annotations

from dataclasses import dataclass, field

from triskel.workers.engine.request import RequestState


@dataclass(slots=True)
class ScheduledBatch:
    """What one step runs: `requests[i]` is fed `num_new_tokens[i]` tokens."""

    requests: list[RequestState] = field(default_factory=list)
    num_new_tokens: list[int] = field(default_factory=list)
    num_preempted: int = 0
    # Tokens whose KV this step copies back from the host tier (the copy is on its clock).
    num_loaded_tokens: int = 0

    @property
    def is_empty(self) -> bool:
        return not self.requests

    def add(self, state: RequestState, num_new_tokens: int) -> None:
        self.requests.append(state)
        self.num_new_tokens.append(num_new_tokens)
