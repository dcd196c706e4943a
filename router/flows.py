"""How a request runs on workers once its stages are done, with retries.

    disaggregated:  pick prefill → Prefill (first token, KV handle) → pick decode →
                    Decode pulling the KV → tokens
    conditional:    pick decode first; if it lacks fewer than `maxLocalPrefillTokens`
                    of the prompt, Decode there with local prefill (no transfer)
    adaptive:       as conditional; otherwise pick prefill too and prefill on the decode
                    worker if its predicted TTFT is lower
                    (`triskel.router.scheduling.disaggregation`)
    unified:        Decode with local prefill on a unified worker

A stage whose worker fails before it produced anything is retried on another
worker (up to `maxAttempts`). A decode worker that fails after the KV was pulled
but before its first token is replaced by local prefill on another decode worker,
dropping the token the client already has (outputs are deterministic per prompt).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncGenerator, Sequence
from typing import TypeVar

from triskel.common.api import Role
from triskel.common.routing_api import RoutingSettings
from triskel.common.tokenizer import MockTokenizer
from triskel.router.dispatcher import Dispatcher
from triskel.router.scheduling.disaggregation import (
    LocalPrefill,
    decode_is_faster,
    local_prefill,
    needs_decode_first,
)
from triskel.router.scheduling.types import Stage
from triskel.router.stages.base import RequestContext
from triskel.router.types import FinishEvent, GenerationEvent, ServiceError, TokenEvent
from triskel.router.unavailable import unavailable
from triskel.router.worker_calls import WorkerCalls
from triskel.router.worker_client import (
    DecodeCall,
    DecodeEvent,
    DecodeFinished,
    KvPulled,
    PrefillCall,
    PrefillReply,
    WorkerClient,
)

T = TypeVar("T")


class Flows:
    def __init__(
        self,
        dispatcher: Dispatcher,
        calls: WorkerCalls,
        tokenizer: MockTokenizer,
    ) -> None:
        self._tokenizer = tokenizer
        self._dispatcher = dispatcher
        self._cluster = dispatcher.cluster
        self._calls = calls

    def _settings_of(self, ctx: RequestContext) -> RoutingSettings:
        return self._dispatcher.table.for_model(ctx.model_pools.model).settings

    # -- unified and local prefill ------------------------------------------------

    async def unified(self, ctx: RequestContext) -> AsyncGenerator[GenerationEvent, None]:
        local = self._local(ctx, Stage.UNIFIED, ctx.model_pools.of(Role.UNIFIED))
        async for event in _relay(local):
            yield event

    async def _local(
        self,
        ctx: RequestContext,
        stage: Stage,
        workers: Sequence[WorkerClient],
        first_choice: WorkerClient | None = None,
        num_tokens_already_sent: int = 0,
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Decode with local prefill; retried elsewhere while no new token was streamed."""
        failed: set[str] = set()
        for attempt in range(self._settings_of(ctx).max_attempts):
            worker = first_choice or await self._dispatcher.pick(stage, ctx, workers, failed)
            first_choice = None
            to_skip = num_tokens_already_sent
            streamed = False
            try:
                with self._cluster.prefilling(worker.worker_id, self._uncached(ctx, worker)):
                    stream = self._decode_stream(ctx, worker, stage, _decode_call(ctx))
                    async with contextlib.aclosing(stream):
                        async for event in stream:
                            if isinstance(event, DecodeFinished):
                                yield _finish(
                                    ctx,
                                    event.finish_reason,
                                    event.num_generated_tokens,
                                    event.num_cached_tokens,
                                )
                                return
                            if isinstance(event, TokenEvent):
                                event, to_skip = self._drop_leading(event, to_skip)
                                if event.token_ids:
                                    streamed = True
                                    yield event
            except ServiceError:
                if streamed or attempt + 1 == self._settings_of(ctx).max_attempts:
                    raise
                failed.add(worker.worker_id)
                self._calls.metrics.observe_retry(stage)

    # -- disaggregated ------------------------------------------------------------

    async def disaggregated(self, ctx: RequestContext) -> AsyncGenerator[GenerationEvent, None]:
        pools = ctx.model_pools
        decode_workers = pools.of(Role.DECODE)
        decode_worker: WorkerClient | None = None
        prefill_workers = pools.of(Role.PREFILL)
        first_prefill: WorkerClient | None = None
        policy = self._settings_of(ctx).disaggregation
        if needs_decode_first(policy):
            decode_worker = await self._dispatcher.pick(Stage.DECODE, ctx, decode_workers)
            uncached = self._uncached(ctx, decode_worker)
            choice = local_prefill(policy, uncached)
            if choice is LocalPrefill.COMPARE:
                first_prefill = await self._dispatcher.pick(Stage.PREFILL, ctx, prefill_workers)
                if self._decode_is_faster(ctx, decode_worker, uncached, first_prefill):
                    choice = LocalPrefill.YES
            if choice is LocalPrefill.YES:
                local = self._local(ctx, Stage.DECODE, decode_workers, decode_worker)
                async for event in _relay(local):
                    yield event
                return
        prefill_worker, prefill = await self._prefill(ctx, prefill_workers, first_prefill)
        first_token = _telling_cached(prefill.first_token, prefill)
        if prefill.finish_reason or prefill.kv is None:
            yield first_token
            yield _finish(ctx, prefill.finish_reason or "stop", 1, prefill.num_cached_tokens)
            return
        transfer = _Transfer(prefill)
        try:
            if not prefill.decode_repeats_first_token:
                yield first_token
            decode = self._decode_after_prefill(ctx, decode_workers, decode_worker, transfer)
            async for event in _relay(decode):
                yield event
        finally:
            if not transfer.is_pulled:
                # Nobody took the KV: free it on the prefill worker now, not at hold expiry.
                await prefill_worker.cancel(ctx.request.request_id)

    async def _decode_after_prefill(
        self,
        ctx: RequestContext,
        workers: Sequence[WorkerClient],
        first_choice: WorkerClient | None,
        transfer: _Transfer,
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Decode with the prefill's KV; retried elsewhere while no decode token was streamed."""
        failed: set[str] = set()
        for attempt in range(self._settings_of(ctx).max_attempts):
            worker = first_choice or await self._dispatcher.pick(Stage.DECODE, ctx, workers, failed)
            first_choice = None
            if transfer.is_pulled:
                # The KV went to a worker that then failed: recompute it here instead,
                # skipping the first token when the client already has it.
                shown = 0 if transfer.prefill.decode_repeats_first_token else 1
                local = self._local(ctx, Stage.DECODE, workers, worker, shown)
                async for event in _relay(local):
                    yield event
                return
            streamed = False
            try:
                async for event in _relay(self._decode_with_kv(ctx, worker, transfer)):
                    streamed = True
                    yield event
                return
            except ServiceError:
                if streamed or attempt + 1 == self._settings_of(ctx).max_attempts:
                    raise
                failed.add(worker.worker_id)
                self._calls.metrics.observe_retry(Stage.DECODE)

    async def _decode_with_kv(
        self, ctx: RequestContext, worker: WorkerClient, transfer: _Transfer
    ) -> AsyncGenerator[GenerationEvent, None]:
        prefill = transfer.prefill
        assert prefill.kv is not None  # disaggregated() decodes only a prefill that kept KV
        call = _decode_call(ctx, prefill)
        is_first_token = True
        with self._cluster.decoding(worker.worker_id, _num_blocks(ctx, worker)):
            async for decoded in _relay(self._decode_stream(ctx, worker, Stage.DECODE, call)):
                if isinstance(decoded, KvPulled):
                    transfer.is_pulled = True
                    if decoded.num_bytes:  # real vLLM does not say what it moved
                        seconds = decoded.transfer_ms / 1000
                        self._calls.metrics.observe_kv_transfer(
                            prefill.kv.connector, decoded.num_bytes, seconds
                        )
                elif isinstance(decoded, DecodeFinished):
                    # The prefill's first token counts unless the decode streamed it again.
                    repeated = prefill.decode_repeats_first_token
                    num_generated = decoded.num_generated_tokens + (0 if repeated else 1)
                    yield _finish(
                        ctx, decoded.finish_reason, num_generated, prefill.num_cached_tokens
                    )
                    return
                elif is_first_token:
                    is_first_token = False
                    yield _telling_cached(decoded, prefill)
                else:
                    yield decoded

    async def _prefill(
        self,
        ctx: RequestContext,
        workers: Sequence[WorkerClient],
        first: WorkerClient | None = None,
    ) -> tuple[WorkerClient, PrefillReply]:
        """Prefill with retries; the first attempt goes to `first` when it was picked already."""
        failed: set[str] = set()
        call = PrefillCall(
            request_id=ctx.request.request_id,
            token_ids=ctx.prompt_token_ids,
            max_tokens=ctx.max_tokens,
            kv_hold_ms=self._settings_of(ctx).timeouts.kv_hold_ms,
            seed=ctx.request.seed,
        )
        prefill_s = self._settings_of(ctx).timeouts.prefill_s
        for attempt in range(self._settings_of(ctx).max_attempts):
            if first is not None and attempt == 0:
                worker = first
            else:
                worker = await self._dispatcher.pick(Stage.PREFILL, ctx, workers, failed)
            try:
                with self._cluster.prefilling(worker.worker_id, self._uncached(ctx, worker)):
                    async with self._calls.call(worker, Stage.PREFILL) as guard:
                        reply = await guard.wait(worker.prefill(call, prefill_s))
                return worker, reply
            except ServiceError:
                if attempt + 1 == self._settings_of(ctx).max_attempts:
                    raise
                failed.add(worker.worker_id)
                self._calls.metrics.observe_retry(Stage.PREFILL)
        raise AssertionError("unreachable: the last attempt raises")

    async def _decode_stream(
        self, ctx: RequestContext, worker: WorkerClient, stage: Stage, call: DecodeCall
    ) -> AsyncGenerator[DecodeEvent, None]:
        """The worker's decode stream; cancelled on close, an error if it ends early or
        pauses past `tokenIdleS` once it streams tokens."""
        timeouts = self._settings_of(ctx).timeouts
        stream = worker.decode(call, timeouts.decode_s)
        finished: DecodeFinished | None = None
        # Unbounded until the first token: the worker may queue the request, or prefill it.
        idle_s: float | None = None
        async with self._calls.call(worker, stage) as guard, contextlib.aclosing(stream):
            while True:
                try:
                    event = await guard.wait(anext(stream), idle_s)
                except StopAsyncIteration:
                    break
                if isinstance(event, DecodeFinished):
                    finished = event
                    break
                if isinstance(event, TokenEvent):
                    idle_s = timeouts.token_idle_s
                yield event
        # Outside the call: the call succeeded even if the consumer stops at this event.
        if finished is None:
            raise unavailable(
                f"the {stage} step for model {worker.identity.model} ended early",
                f"worker {worker.worker_id} at {worker.address} ended without finishing",
            )
        yield finished

    def _drop_leading(self, event: TokenEvent, count: int) -> tuple[TokenEvent, int]:
        """`event` without its first `count` tokens (the client has them), and what is left
        to drop."""
        if count == 0:
            return event, 0
        dropped = min(count, len(event.token_ids))
        kept = event.token_ids[dropped:]
        trimmed = TokenEvent(self._tokenizer.decode(kept), kept, event.cached_prompt_tokens)
        return trimmed, count - dropped

    def _decode_is_faster(
        self,
        ctx: RequestContext,
        decode_worker: WorkerClient,
        uncached_on_decode: int,
        prefill_worker: WorkerClient,
    ) -> bool:
        endpoints = self._cluster.endpoints([decode_worker, prefill_worker])
        if len(endpoints) < 2:
            return False  # one went unhealthy meanwhile: keep the prefill pool's path
        decode, prefill = endpoints
        uncached_on_prefill = self._uncached(ctx, prefill_worker)
        return decode_is_faster(decode, uncached_on_decode, prefill, uncached_on_prefill)

    def _uncached(self, ctx: RequestContext, worker: WorkerClient) -> int:
        cached_tokens = self._dispatcher.num_cached_blocks(ctx, worker) * _block_size(worker)
        return len(ctx.prompt_token_ids) - cached_tokens


class _Transfer:
    """A prefill's KV handle and whether a decode worker has pulled it yet."""

    __slots__ = ("is_pulled", "prefill")

    def __init__(self, prefill: PrefillReply) -> None:
        self.prefill = prefill
        self.is_pulled = False


async def _relay(events: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    """Re-yields `events`, closing them when the consumer stops early."""
    async with contextlib.aclosing(events):
        async for event in events:
            yield event


def _decode_call(ctx: RequestContext, prefill: PrefillReply | None = None) -> DecodeCall:
    """Decode without KV (prefill locally), or continuing from `prefill`'s KV."""
    return DecodeCall(
        request_id=ctx.request.request_id,
        token_ids=ctx.prompt_token_ids,
        max_tokens=ctx.max_tokens,
        ignore_eos=ctx.request.ignore_eos,
        kv=None if prefill is None else prefill.kv,
        first_token_id=None if prefill is None else prefill.first_token.token_ids[0],
        seed=ctx.request.seed,
    )


def _telling_cached(event: TokenEvent, prefill: PrefillReply) -> TokenEvent:
    """`event` telling the prefill's cached prompt tokens: a P/D request's, as its finish
    reports them (not the decode worker's), for a stream a stop sequence cuts short."""
    return dataclasses.replace(event, cached_prompt_tokens=prefill.num_cached_tokens)


def _block_size(worker: WorkerClient) -> int:
    return worker.identity.block_size_tokens


def _num_blocks(ctx: RequestContext, worker: WorkerClient) -> int:
    return -(-len(ctx.prompt_token_ids) // _block_size(worker))


def _finish(ctx: RequestContext, reason: str, num_generated: int, num_cached: int) -> FinishEvent:
    return FinishEvent(
        finish_reason=reason,
        prompt_tokens=len(ctx.prompt_token_ids),
        completion_tokens=num_generated,
        cached_prompt_tokens=num_cached,
    )
