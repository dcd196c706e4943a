"""The router's semantic stage: a request for the alias → a decision → the request to serve.

A request naming a real model passes unchanged (decision "none"). For the alias,
the stage builds the bounded `SignalInput`, runs the policy (every signal once,
one embedding), and then either refuses (a blocking decision: 403), or sends the
request, changed by the decision, to the first of the decision's models that has
a ready pool (503 naming them when none has; no silent fallback to any other).
Each alias has its own policy (a cluster may publish several); they are swapped
whole on reload, and a request keeps the one it started with.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from triskel.common.semantic_api import CacheSpec
from triskel.router.semantic.embedding import Embedder
from triskel.router.semantic.metrics import SemanticMetrics
from triskel.router.semantic.mutations import apply_action
from triskel.router.semantic.policy import SemanticDecision, SemanticPolicy
from triskel.router.semantic.request_text import signal_input
from triskel.router.semantic.signals.base import Vector
from triskel.router.types import (
    NO_DECISION,
    GenerationRequest,
    RequestBlocked,
    ServiceError,
)


@dataclass(frozen=True, slots=True)
class LoadedSemantic:
    """One alias's policy, the embedder its signals read, and its cache settings."""

    policy: SemanticPolicy
    embedder: Embedder | None
    cache: CacheSpec | None = None


@dataclass(frozen=True, slots=True)
class Routed:
    """The request to serve (model and mutations applied) and what decided it."""

    request: GenerationRequest
    decision: str = NO_DECISION
    category: str | None = None
    # The decision, when the semantic stage ran (for logs and tests).
    detail: SemanticDecision | None = None
    # The alias's cache settings and embedder, when the semantic stage ran.
    cache: CacheSpec | None = None
    embedder: Embedder | None = None


class SemanticStage:
    def __init__(
        self,
        aliases: Mapping[str, LoadedSemantic],
        is_served: Callable[[str], bool],
        metrics: SemanticMetrics | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._aliases = dict(aliases)
        self._is_served = is_served
        self._metrics = metrics
        self._clock = clock

    def aliases(self) -> dict[str, SemanticPolicy]:
        return {alias: loaded.policy for alias, loaded in self._aliases.items()}

    def replace(self, aliases: Mapping[str, LoadedSemantic]) -> None:
        """Installs new policies in one step (a running request keeps its own)."""
        self._aliases = dict(aliases)

    def route(self, request: GenerationRequest) -> Routed:
        loaded = self._aliases.get(request.model)
        if loaded is None:
            return Routed(request)
        policy = loaded.policy
        started = self._clock()
        inputs = signal_input(request, policy.max_classify_chars, _embed_function(loaded.embedder))
        decision = policy.decide(inputs, self._clock if self._metrics else None)
        if self._metrics is not None:
            self._metrics.observe_stage(self._clock() - started, decision.signal_seconds)
        action = decision.action
        if action.block_message is not None:
            if self._metrics is not None:
                self._metrics.observe_blocked(decision.decision)
            raise RequestBlocked(decision.decision, action.block_message)
        model = next((m for m in action.models if self._is_served(m)), None)
        if model is None:
            wanted = " or ".join(action.models)
            raise ServiceError(
                f"no worker is available for model {wanted} (routing decision "
                f"{decision.decision!r}); retry later",
                retry_after_s=5.0,
            )
        if self._metrics is not None:
            self._metrics.observe_decision(decision.decision, model, action.category)
        routed = apply_action(request, action, model)
        return Routed(
            routed, decision.decision, action.category, decision, loaded.cache, loaded.embedder
        )


def _embed_function(embedder: Embedder | None) -> Callable[[str], Vector] | None:
    if embedder is None:
        return None
    return lambda text: embedder.embed([text])[0]
