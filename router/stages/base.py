"""The request-path interface: each step of the router's request path is a `RequestStage`.

A request's `RequestContext` passes through the stages in order; each reads what
earlier ones left and adds its own part. Later issues slot in semantic routing
(choose model / graph) and a semantic cache (answer without a worker) here
without touching the fronts or the executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from triskel.common.hashing import BlockHash
from triskel.router.registry import ModelPools
from triskel.router.types import GenerationRequest, ImagePart


@dataclass(slots=True)
class RequestContext:
    """Everything the stages know about one request so far."""

    request: GenerationRequest
    # Set by PrepareStage.
    pools: ModelPools | None = None
    # The prompt as text pieces and images, in order (PrepareStage).
    segments: list[str | ImagePart] = field(default_factory=list)
    # Embedding token ids per image, in segment order (EncodeStage).
    image_token_ids: list[tuple[int, ...]] = field(default_factory=list)
    # Set by TokenizeStage.
    prompt_token_ids: list[int] = field(default_factory=list)
    max_tokens: int = 0
    # The prompt's block hashes, computed once when a scheduler first needs them.
    block_hashes: list[BlockHash] | None = None
    # Leading blocks each picked worker held when it was picked, for workers whose cache
    # the router only infers from its own picks (recording a pick must not count itself).
    cached_blocks_at_pick: dict[str, int] = field(default_factory=dict)

    @property
    def model_pools(self) -> ModelPools:
        if self.pools is None:
            raise RuntimeError("PrepareStage has not run")
        return self.pools


class RequestStage(Protocol):
    """One step of the request path.

    `run` may update the context, raise `RequestError` (the client's fault) or
    `ServiceError` (ours). Stages must not hold state across requests except
    what the policy they implement needs (e.g. a picker's counters).
    """

    name: str

    async def run(self, ctx: RequestContext) -> None: ...
