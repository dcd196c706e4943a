"""What the engine core hands back to its caller: step results, KV loads, stats."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from triskel.workers.engine.request import FinishReason


@dataclass(slots=True)
class RequestOutput:
    """One request's progress in one step.

    `finish_reason` is None while the request runs. `is_prefill_done` is True on
    the output that carries the request's first token (index 0); a remote-KV
    request never gets one, its first token came from the prefill worker.
    """

    request_id: str
    new_token_ids: list[int]
    finish_reason: FinishReason | None
    num_cached_tokens: int
    num_prompt_tokens: int
    is_prefill_done: bool = False


@dataclass(slots=True)
class StepResult:
    """One engine step: its modelled duration and the outputs it produced."""

    duration_ms: float
    outputs: list[RequestOutput]
    num_preempted: int


@dataclass(slots=True)
class KvLoad:
    """Remote KV a decode request needs pulled into `block_ids` (whole prompt, in order).

    The first `num_cached_blocks` blocks were already cached here: no need to pull them.
    """

    request_id: str
    block_ids: list[int]
    num_cached_blocks: int
    num_prompt_tokens: int


@dataclass(slots=True)
class EngineStats:
    """A load snapshot.

    `num_waiting_requests` includes requests waiting for remote KV (as vLLM counts
    them); `num_tokens_in_flight` is the uncomputed prompt tokens of queued and
    running requests plus the remaining output tokens (up to max_tokens) of
    running ones.
    """

    num_waiting_requests: int
    num_running_requests: int
    num_kv_holds: int
    kv_usage: float
    num_kv_blocks: int
    num_free_kv_blocks: int
    num_tokens_in_flight: int
    prefix_query_tokens_total: int
    prefix_hit_tokens_total: int
    num_preemptions_total: int
    # Of the prefix hits, the tokens loaded back from the host tier.
    host_hit_tokens_total: int = 0
    # Requests that ran to their end, by finish reason (a held prefill: "length").
    finished_total: Mapping[str, int] = field(default_factory=dict)
