"""Builders for scheduling tests that involve prompt prefixes: endpoints, requests, pickers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from triskel.common.hashing import hash_blocks
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.types import (
    ActiveLoad,
    CycleState,
    Endpoint,
    SchedulingRequest,
    ScoredEndpoint,
    Stage,
)

MODEL = "m"
BLOCK_SIZE_TOKENS = 4


def endpoint(
    worker_id: str,
    *,
    num_prefill_tokens: int = 0,
    block_size_tokens: int = BLOCK_SIZE_TOKENS,
) -> Endpoint:
    """A worker with no latency profile and `num_prefill_tokens` queued for prefill."""
    return Endpoint(
        worker_id=worker_id,
        model=MODEL,
        block_size_tokens=block_size_tokens,
        active=ActiveLoad(num_prefill_tokens=num_prefill_tokens),
    )


def prompt_request(
    token_ids: Sequence[int],
    *,
    block_size_tokens: int = BLOCK_SIZE_TOKENS,
    request_id: str = "r",
) -> SchedulingRequest:
    """A prefill request whose block hashes are the real chained hashes of `token_ids`."""
    return SchedulingRequest(
        request_id=request_id,
        model=MODEL,
        stage=Stage.PREFILL,
        token_ids=list(token_ids),
        block_hashes=hash_blocks(token_ids, block_size_tokens, MODEL),
        max_tokens=8,
    )


class FirstBestPicker:
    """Highest score, first in candidate order on ties (deterministic, for tests)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def pick(
        self, request: SchedulingRequest, scored: Sequence[ScoredEndpoint], state: CycleState
    ) -> tuple[Endpoint, str]:
        best = max(scored, key=lambda s: s.score)
        return best.endpoint, "first-best"


def create_first_best_picker(
    name: str, parameters: Mapping[str, Any], context: PluginContext
) -> FirstBestPicker:
    return FirstBestPicker(name)


def not_again() -> Any:
    """A `CycleState.memo_for` compute that fails: the value must be there already."""
    raise AssertionError("computed twice in one cycle")
