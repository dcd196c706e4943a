"""The request-path interface: each step of the router's request path is a `RequestStage`.

A request's `RequestContext` passes through the stages in order; each reads what
earlier ones left and adds its own part. Later issues slot in semantic routing
(choose model / graph) and a semantic cache (answer without a worker) here
without touching the fronts or the executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from triskel.common.hashing import BlockHash, hash_blocks
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
    _block_hashes: list[BlockHash] | None = None

    @property
    def model_pools(self) -> ModelPools:
        if self.pools is None:
            raise RuntimeError("PrepareStage has not run")
        return self.pools

    @property
    def block_hashes(self) -> list[BlockHash]:
        """The prompt's full-block hashes as the model's workers compute them (computed
        once, when a pick first needs them)."""
        if self._block_hashes is None:
            identity = self.model_pools.any_worker.identity
            self._block_hashes = hash_blocks(
                self.prompt_token_ids,
                identity.block_size_tokens,
                identity.model,
                identity.hash_salt,
            )
        return self._block_hashes


class RequestStage(Protocol):
    """One step of the request path.

    `run` may update the context, raise `RequestError` (the client's fault) or
    `ServiceError` (ours). Stages must not hold state across requests except
    what the policy they implement needs (e.g. a picker's counters).
    """

    name: str

    async def run(self, ctx: RequestContext) -> None: ...
