"""Drives one request: the context stages, then the flow its model's serving mode needs.

The orchestrator implements the fronts' `Generator`. Stages (prepare, encode,
tokenize) enrich a `RequestContext`; `Flows` run it on workers chosen by the
scheduler. Closing the event stream early (the client left) closes every gRPC
call in flight, which aborts the request on the workers and frees its KV.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator, Sequence

from triskel.common.tokenizer import MockTokenizer
from triskel.router.admission import (
    PRIORITY_HEADER,
    AdmissionRejected,
    parse_priority,
    parse_tenant,
)
from triskel.router.dispatcher import Dispatcher
from triskel.router.flows import Flows
from triskel.router.registry import WorkerRegistry
from triskel.router.semantic.stage import SemanticStage
from triskel.router.semantic_cache.request_path import BYPASS, CachePlan, RequestCache, replay
from triskel.router.stages.base import RequestContext, RequestStage
from triskel.router.stages.encode import EncodeStage
from triskel.router.stages.prepare import PrepareStage
from triskel.router.stages.tokenize import TokenizeStage
from triskel.router.stops import with_stops
from triskel.router.types import (
    CacheStatus,
    FinishEvent,
    GenerationEvent,
    GenerationRequest,
    ModelCard,
    OverloadedError,
    RequestError,
    RouteEvent,
    TokenEvent,
)
from triskel.router.worker_calls import WorkerCalls


class Orchestrator:
    def __init__(
        self,
        registry: WorkerRegistry,
        dispatcher: Dispatcher,
        calls: WorkerCalls,
        tokenizer: MockTokenizer | None = None,
        semantic: SemanticStage | None = None,
        cache: RequestCache | None = None,
    ) -> None:
        tokenizer = tokenizer or MockTokenizer()
        self._table = dispatcher.table
        self._registry = registry
        self._semantic = semantic or SemanticStage({}, lambda model: False)
        self._cache = cache
        self._flows = Flows(dispatcher, calls)
        self._stages: Sequence[RequestStage] = (
            PrepareStage(registry, tokenizer),
            EncodeStage(dispatcher, calls),
            TokenizeStage(tokenizer),
        )

    def models(self) -> list[ModelCard]:
        cards = self._registry.model_cards()
        aliases = []
        for alias, policy in sorted(self._semantic.aliases().items()):
            # An alias accepts what the largest of its models accepts; the chosen model's
            # own window is checked once it is chosen.
            targets = [card for card in cards if card.name in policy.models]
            window = max((card.max_context_tokens for card in targets), default=0)
            aliases.append(ModelCard(alias, window))
        return cards + aliases

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        try:
            priority = parse_priority(request.headers)
        except ValueError as error:
            message = str(error).removeprefix(f"header {PRIORITY_HEADER}: ")
            raise RequestError(PRIORITY_HEADER, message) from None
        routed = self._semantic.route(request)
        request = routed.request
        if self._registry.pools(request.model) is None:
            served = ", ".join(card.name for card in self.models()) or "none"
            raise RequestError("model", f"unknown model {request.model!r}; served: {served}")
        plan = BYPASS if self._cache is None else await self._cache.plan(routed)
        yield RouteEvent(
            model=request.model,
            decision=routed.decision,
            category=routed.category,
            cache=plan.status,
            enable_thinking=request.enable_thinking,
        )
        if plan.hit is not None:  # answered from the cache: no queue, no worker
            for event in replay(plan.hit):
                yield event
            return
        pieces: list[str] | None = [] if plan.status is CacheStatus.MISS else None
        try:
            admission = self._table.for_model(request.model).admission
            async with admission.admit(priority, parse_tenant(request.headers)):
                ctx = RequestContext(worker_request(request))
                for stage in self._stages:
                    await stage.run(ctx)
                events = self._flows.run(ctx)
                if request.stop:
                    events = with_stops(events, request.stop, len(ctx.prompt_token_ids))
                async with contextlib.aclosing(events):
                    async for event in events:
                        if pieces is not None:
                            self._record(plan, pieces, event)
                        yield event
        except AdmissionRejected as rejected:
            raise OverloadedError(str(rejected), retry_after_s=rejected.retry_after_s) from None

    def _record(self, plan: CachePlan, pieces: list[str], event: GenerationEvent) -> None:
        """Collects a cache miss's answer; a complete one is stored once it finished."""
        if isinstance(event, TokenEvent):
            pieces.append(event.text)
        elif isinstance(event, FinishEvent) and self._cache is not None:
            self._cache.store_later(plan, pieces, event)


def worker_request(request: GenerationRequest) -> GenerationRequest:
    """`request` under the id its workers see: the client's id plus a random suffix.

    Client ids are labels (as Envoy treats x-request-id), not keys: two clients, or the
    clients of two routers sharing workers, may send the same one, and a worker refuses
    an id already in flight. The suffix makes every worker-side id unique; the client's
    prefix keeps worker logs searchable by the id the client knows.
    """
    return dataclasses.replace(request, request_id=f"{request.request_id}.{secrets.token_hex(8)}")
