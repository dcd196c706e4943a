"""What a generation flow yields, and the request it runs: the seam between the flows
(`flows`, `pd_flows`) and the handlers that turn events into responses (`generation`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from triskel.workers.api import KvReceived, Tokens
from triskel.workers.openai_http.errors import Json


@dataclass(frozen=True, slots=True)
class Job:
    """One request as the engine takes it."""

    request_id: str
    prompt_token_ids: tuple[int, ...]
    max_tokens: int
    ignore_eos: bool
    # The request field the prompt came from, for errors about it: prompt or messages.
    prompt_field: str = "prompt"
    # The answer ends before the first of these (`stops.with_stops`).
    stop: tuple[str, ...] = ()
    # The client's sampling seed; both halves of a P/D request are given the same.
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Finished:
    """A flow's last event."""

    finish_reason: str
    num_completion_tokens: int
    num_cached_tokens: int
    # A prefill's answer to do_remote_decode (vLLM P/D); None otherwise.
    kv_transfer_params: Json | None = None
    # This worker kept the prompt's KV for a decode worker to pull.
    is_kv_exported: bool = False


# A flow yields `KvReceived` (remote KV arrived), `Tokens` (text to send), then one `Finished`.
FlowEvent = KvReceived | Tokens | Finished
# Closing a flow (aclose) aborts its engine request.
Flow = AsyncGenerator[FlowEvent, None]
