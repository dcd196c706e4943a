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
worker (up to `maxAttempts`). A decode worker that fails mid-answer, or after it
pulled the KV, is replaced by another decode (or unified) worker that prefills the
prompt and the answer so far itself and continues after them (request migration,
`triskel.router.migration`, up to `migrationLimit` times).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import TypeVar

from triskel.common.api import Role
from triskel.common.routing_api import RoutingSettings
from triskel.router.dispatcher import Dispatcher
from triskel.router.migration import DecodeLimits, Failures, Next, after_failure, continuation
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

_log = logging.getLogger(__name__)


class Flows:
    def __init__(self, dispatcher: Dispatcher, calls: WorkerCalls) -> None:
        self._dispatcher = dispatcher
        self._cluster = dispatcher.cluster
        self._calls = calls

    def _settings_of(self, ctx: RequestContext) -> RoutingSettings:
        return self._dispatcher.table.for_model(ctx.model_pools.model).settings

    # -- unified ------------------------------------------------------------------

    async def unified(self, ctx: RequestContext) -> AsyncGenerator[GenerationEvent, None]:
        decode = self._decode(ctx, Stage.UNIFIED, ctx.model_pools.of(Role.UNIFIED))
        async for event in _relay(decode):
            yield event

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
                local = self._decode(ctx, Stage.DECODE, decode_workers, decode_worker)
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
            decode = self._decode(ctx, Stage.DECODE, decode_workers, decode_worker, transfer)
            async for event in _relay(decode):
                yield event
        finally:
            if not transfer.is_pulled:
                # Nobody took the KV: free it on the prefill worker now, not at hold expiry.
                await prefill_worker.cancel(ctx.request.request_id)

    async def _decode(
        self,
        ctx: RequestContext,
        stage: Stage,
        workers: Sequence[WorkerClient],
        first_choice: WorkerClient | None = None,
        transfer: _Transfer | None = None,
    ) -> AsyncGenerator[GenerationEvent, None]:
        """The answer's decode on `first_choice` (else a pick), with `transfer`'s KV or
        prefilling locally. A failed call is retried or migrated (`after_failure`): the
        next worker prefills the prompt and the answer so far and continues after them."""
        settings = self._settings_of(ctx)
        limits = DecodeLimits(settings.max_attempts, settings.migration_limit)
        failures = Failures()
        # Every answer token the client has, the prefill's first one included.
        answer: list[int] = [] if transfer is None else list(transfer.shown_token_ids)
        num_cached_tokens = 0  # as a worker last told them, for a finish it did not send
        failed: set[str] = set()
        worker = first_choice
        while True:
            if worker is None:
                worker = await self._dispatcher.pick(stage, ctx, workers, failed)
            num_before = len(answer)
            # The KV serves until it is pulled or a call decoded tokens: then prefill here.
            is_kv_usable = transfer is not None and not transfer.is_pulled
            kv = transfer if is_kv_usable and not failures.num_migrations else None
            try:
                events = self._decode_once(ctx, worker, stage, answer, kv)
                async with contextlib.aclosing(events):
                    async for event in events:
                        if isinstance(event, DecodeFinished):
                            num_generated = num_before + event.num_generated_tokens
                            reason = event.finish_reason
                            yield _finish(ctx, reason, num_generated, event.num_cached_tokens)
                            return
                        answer.extend(event.token_ids)
                        if event.cached_prompt_tokens is not None:
                            num_cached_tokens = event.cached_prompt_tokens
                        yield event
            except ServiceError as error:
                num_call_tokens = len(answer) - num_before
                decision = after_failure(failures, limits, answer, num_call_tokens, ctx.max_tokens)
                failures = decision.failures
                if decision.next is Next.COMPLETE:
                    yield _finish(ctx, "length", len(answer), num_cached_tokens)
                    return
                if decision.next is Next.GIVE_UP:
                    if failures.num_migrations:
                        _log.warning(
                            "request %s ends after %d of %d tokens: %s",
                            ctx.request.request_id,
                            len(answer),
                            ctx.max_tokens,
                            decision.reason,
                        )
                    raise
                failed.add(worker.worker_id)
                try:
                    worker = await self._dispatcher.pick(stage, ctx, workers, failed)
                except ServiceError:
                    # Nobody left: the client reads what failed, as without a retry.
                    raise error from None
                if decision.next is Next.MIGRATE:
                    self._calls.metrics.observe_migration(ctx.model_pools.model, stage)
                    _log.info(
                        "request %s continues on worker %s after %d of %d tokens (migration %d)",
                        ctx.request.request_id,
                        worker.worker_id,
                        len(answer),
                        ctx.max_tokens,
                        failures.num_migrations,
                    )
                else:
                    self._calls.metrics.observe_retry(stage)

    async def _decode_once(
        self,
        ctx: RequestContext,
        worker: WorkerClient,
        stage: Stage,
        answer: Sequence[int],
        transfer: _Transfer | None,
    ) -> AsyncGenerator[TokenEvent | DecodeFinished, None]:
        """One decode call: with `transfer`'s KV, else prefilling the prompt and `answer`
        here. A KV pull is recorded on `transfer`; a P/D request's cached prompt tokens
        are the prefill's."""
        if transfer is None:
            call = _local_call(ctx, answer)
            uncached = self._uncached(ctx, worker) + len(answer)
            load = self._cluster.prefilling(worker.worker_id, uncached)
        else:
            call = _decode_call(ctx, transfer.prefill)
            load = self._cluster.decoding(worker.worker_id, _num_blocks(ctx, worker))
        is_first_token = True
        with load:
            async for decoded in _relay(self._decode_stream(ctx, worker, stage, call)):
                if isinstance(decoded, KvPulled):
                    assert transfer is not None  # only a call with a KV handle pulls one
                    transfer.is_pulled = True
                    self._observe_pull(transfer, decoded)
                elif transfer is None:
                    yield decoded
                elif isinstance(decoded, DecodeFinished):
                    yield dataclasses.replace(
                        decoded, num_cached_tokens=transfer.prefill.num_cached_tokens
                    )
                elif is_first_token:
                    is_first_token = False
                    yield _telling_cached(decoded, transfer.prefill)
                else:
                    yield decoded

    def _observe_pull(self, transfer: _Transfer, pulled: KvPulled) -> None:
        if pulled.num_bytes and transfer.prefill.kv is not None:  # vLLM does not say
            seconds = pulled.transfer_ms / 1000
            connector = transfer.prefill.kv.connector
            self._calls.metrics.observe_kv_transfer(connector, pulled.num_bytes, seconds)

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

    @property
    def shown_token_ids(self) -> tuple[int, ...]:
        """The prefill's first token when the client has it (the decode does not repeat it)."""
        return () if self.prefill.decode_repeats_first_token else self.prefill.first_token.token_ids


async def _relay(events: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    """Re-yields `events`, closing them when the consumer stops early."""
    async with contextlib.aclosing(events):
        async for event in events:
            yield event


def _decode_call(ctx: RequestContext, prefill: PrefillReply) -> DecodeCall:
    """Decode continuing from `prefill`'s KV and first token."""
    return DecodeCall(
        request_id=ctx.request.request_id,
        token_ids=ctx.prompt_token_ids,
        max_tokens=ctx.max_tokens,
        ignore_eos=ctx.request.ignore_eos,
        kv=prefill.kv,
        first_token_id=prefill.first_token.token_ids[0],
        seed=ctx.request.seed,
    )


def _local_call(ctx: RequestContext, answer: Sequence[int]) -> DecodeCall:
    """Decode prefilling here: the prompt, then the `answer` so far when continuing one."""
    continued = continuation(ctx.prompt_token_ids, answer, ctx.max_tokens)
    return DecodeCall(
        request_id=ctx.request.request_id,
        token_ids=continued.token_ids,
        max_tokens=continued.max_tokens,
        ignore_eos=ctx.request.ignore_eos,
        # The same seed: a continuation reproducible for a given failure point.
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
    num_prompt_tokens = len(ctx.prompt_token_ids)
    return FinishEvent(
        finish_reason=reason,
        prompt_tokens=num_prompt_tokens,
        completion_tokens=num_generated,
        # A migrated answer's last worker counts its cache of the prompt and the answer.
        cached_prompt_tokens=min(num_cached, num_prompt_tokens),
    )
