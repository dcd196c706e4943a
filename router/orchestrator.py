"""Drives one request: the context stages, then the flow its model's serving mode needs.

The orchestrator implements the fronts' `Generator`. Stages (prepare, encode,
tokenize) enrich a `RequestContext`; `Flows` run it on workers chosen by the
scheduler. Closing the event stream early (the client left) closes every gRPC
call in flight, which aborts the request on the workers and frees its KV.
"""

from __future__ import annotations

import contextlib
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
from triskel.router.registry import ServingMode, WorkerRegistry
from triskel.router.stages.base import RequestContext, RequestStage
from triskel.router.stages.encode import EncodeStage
from triskel.router.stages.prepare import PrepareStage
from triskel.router.stages.tokenize import TokenizeStage
from triskel.router.types import (
    GenerationEvent,
    GenerationRequest,
    ModelCard,
    OverloadedError,
    RequestError,
)
from triskel.router.worker_calls import WorkerCalls


class Orchestrator:
    def __init__(
        self,
        registry: WorkerRegistry,
        dispatcher: Dispatcher,
        calls: WorkerCalls,
        tokenizer: MockTokenizer | None = None,
    ) -> None:
        tokenizer = tokenizer or MockTokenizer()
        self._table = dispatcher.table
        self._registry = registry
        self._flows = Flows(dispatcher, calls, tokenizer)
        self._stages: Sequence[RequestStage] = (
            PrepareStage(registry),
            EncodeStage(dispatcher, calls),
            TokenizeStage(tokenizer),
        )

    def models(self) -> list[ModelCard]:
        return self._registry.model_cards()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        try:
            priority = parse_priority(request.headers)
        except ValueError as error:
            message = str(error).removeprefix(f"header {PRIORITY_HEADER}: ")
            raise RequestError(PRIORITY_HEADER, message) from None
        try:
            # An unknown model is refused by the prepare stage, after the default queue.
            admission = self._table.for_model(request.model).admission
            async with admission.admit(priority, parse_tenant(request.headers)):
                ctx = RequestContext(request)
                for stage in self._stages:
                    await stage.run(ctx)
                if ctx.model_pools.mode is ServingMode.DISAGGREGATED:
                    events = self._flows.disaggregated(ctx)
                else:
                    events = self._flows.unified(ctx)
                async with contextlib.aclosing(events):
                    async for event in events:
                        yield event
        except AdmissionRejected as rejected:
            raise OverloadedError(str(rejected), retry_after_s=rejected.retry_after_s) from None
