"""Drives one request through its stages and workers: encode → prefill → KV transfer → decode.

The orchestrator implements the fronts' `Generator`. It runs the context
stages (prepare, encode, tokenize), then executes the model's serving mode:

    disaggregated: Prefill on a prefill worker → first token to the client →
                   Decode on a decode worker, which pulls the KV → tokens
    unified:       Decode on a unified worker, which prefills locally

Closing the event stream early (the client left) cancels the gRPC calls, which
aborts the request on the workers and frees its KV.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

import grpc

from triskel.common.api import Role
from triskel.common.tokenizer import MockTokenizer
from triskel.router.metrics import RouterMetrics
from triskel.router.picker import Picker
from triskel.router.registry import ServingMode, WorkerRegistry
from triskel.router.stages.base import RequestContext, Stage
from triskel.router.stages.encode import EncodeStage
from triskel.router.stages.prepare import PrepareStage
from triskel.router.stages.tokenize import TokenizeStage
from triskel.router.types import (
    FinishEvent,
    GenerationEvent,
    GenerationRequest,
    ModelCard,
    ServiceError,
    TokenEvent,
)
from triskel.router.worker_calls import StageTimeouts, WorkerCalls
from triskel.router.worker_client import WorkerClient
from triskel.v1 import worker_pb2


class Orchestrator:
    def __init__(
        self,
        registry: WorkerRegistry,
        picker: Picker,
        metrics: RouterMetrics,
        timeouts: StageTimeouts | None = None,
        tokenizer: MockTokenizer | None = None,
    ) -> None:
        self._registry = registry
        self._picker = picker
        self._calls = WorkerCalls(metrics, timeouts or StageTimeouts())
        self._stages: Sequence[Stage] = (
            PrepareStage(registry),
            EncodeStage(picker, self._calls),
            TokenizeStage(tokenizer or MockTokenizer()),
        )

    def models(self) -> list[ModelCard]:
        return self._registry.model_cards()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        ctx = RequestContext(request)
        for stage in self._stages:
            await stage.run(ctx)
        pools = ctx.model_pools
        if pools.mode is ServingMode.DISAGGREGATED:
            events = self._disaggregated(ctx)
        else:
            events = self._unified(ctx)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def _disaggregated(self, ctx: RequestContext) -> AsyncGenerator[GenerationEvent, None]:
        pools, request = ctx.model_pools, ctx.request
        prefill_worker = self._picker.pick("prefill", pools.model, pools.of(Role.PREFILL))
        async with self._calls.call(prefill_worker, "prefill"):
            prefill: worker_pb2.PrefillResponse = await prefill_worker.stub.Prefill(
                worker_pb2.PrefillRequest(
                    request_id=request.request_id,
                    token_ids=ctx.prompt_token_ids,
                    max_tokens=ctx.max_tokens,
                    kv_hold_ms=self._calls.timeouts.kv_hold_ms,
                ),
                timeout=self._calls.timeouts.prefill_s,
            )
        first_token = TokenEvent(prefill.first_token_text, (prefill.first_token_id,))
        if prefill.finish_reason:
            yield first_token
            yield self._finish(ctx, prefill.finish_reason, 1, prefill.num_cached_tokens)
            return
        pulled = False
        try:
            yield first_token
            decode_worker = self._picker.pick("decode", pools.model, pools.of(Role.DECODE))
            decode_request = _decode_request(ctx)
            decode_request.kv.CopyFrom(prefill.kv)
            decode_request.first_token_id = prefill.first_token_id
            stream = self._decode_stream(decode_worker, decode_request)
            async with contextlib.aclosing(stream):
                async for event in stream:
                    if isinstance(event, worker_pb2.KvReceived):
                        pulled = True
                        self._calls.metrics.observe_kv_transfer(
                            prefill.kv.connector, event.num_bytes, event.transfer_ms / 1000
                        )
                    elif isinstance(event, worker_pb2.DecodeDone):
                        yield self._finish(
                            ctx,
                            event.finish_reason,
                            1 + event.num_generated_tokens,
                            prefill.num_cached_tokens,
                        )
                    else:
                        yield event
        finally:
            if not pulled:
                # The decode side never took the KV: free it on the prefill worker now
                # rather than when its hold expires.
                await _cancel_quietly(prefill_worker, request.request_id)

    async def _unified(self, ctx: RequestContext) -> AsyncGenerator[GenerationEvent, None]:
        pools = ctx.model_pools
        worker = self._picker.pick("unified", pools.model, pools.of(Role.UNIFIED))
        stream = self._decode_stream(worker, _decode_request(ctx))
        async with contextlib.aclosing(stream):
            async for event in stream:
                if isinstance(event, worker_pb2.DecodeDone):
                    yield self._finish(
                        ctx,
                        event.finish_reason,
                        event.num_generated_tokens,
                        event.num_cached_tokens,
                    )
                elif isinstance(event, TokenEvent):
                    yield event

    async def _decode_stream(
        self, worker: WorkerClient, request: worker_pb2.DecodeRequest
    ) -> AsyncGenerator[TokenEvent | worker_pb2.KvReceived | worker_pb2.DecodeDone, None]:
        """The worker's Decode stream as events; cancelled on close, error if it ends early."""
        call = worker.stub.Decode(request, timeout=self._calls.timeouts.decode_s)
        try:
            async with self._calls.call(worker, "decode"):
                async for response in call:
                    kind = response.WhichOneof("event")
                    if kind == "tokens":
                        yield TokenEvent(response.tokens.text, tuple(response.tokens.token_ids))
                    elif kind == "kv_received":
                        yield response.kv_received
                    elif kind == "done":
                        yield response.done
                        return
            raise ServiceError(f"decode on worker {worker.worker_id} ended without finishing")
        finally:
            call.cancel()

    def _finish(
        self, ctx: RequestContext, reason: str, num_generated: int, num_cached: int
    ) -> FinishEvent:
        return FinishEvent(
            finish_reason=reason,
            prompt_tokens=len(ctx.prompt_token_ids),
            completion_tokens=num_generated,
            cached_prompt_tokens=num_cached,
        )


def _decode_request(ctx: RequestContext) -> worker_pb2.DecodeRequest:
    """Decode without KV (prefill locally); the disaggregated path adds the handle."""
    return worker_pb2.DecodeRequest(
        request_id=ctx.request.request_id,
        token_ids=ctx.prompt_token_ids,
        max_tokens=ctx.max_tokens,
        ignore_eos=ctx.request.ignore_eos,
    )


async def _cancel_quietly(worker: WorkerClient, request_id: str) -> None:
    with contextlib.suppress(grpc.aio.AioRpcError):
        await worker.stub.Cancel(worker_pb2.CancelRequest(request_id=request_id), timeout=2.0)
