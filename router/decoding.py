"""An answer's decode on live workers, with retries and request migration.

A call whose worker fails before it produced a token is retried on another worker (up
to `maxAttempts`); one that fails mid-answer is continued on another decode (or unified)
worker after the tokens the client has (request migration, `triskel.router.migration`,
up to `migrationLimit` times). Either way the next worker prefills the prompt and the
answer so far itself: only the first call is given the prefill's KV, as a failed call
may have pulled it (a handle is single-use) before its report arrived. The walk
(`triskel.router.flows`) decides the first worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncGenerator, Sequence

from triskel.router.dispatcher import Dispatcher, Picked
from triskel.router.migration import DecodeLimits, Failures, Next, after_failure, continuation
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
    PrefillReply,
    WorkerClient,
)

_log = logging.getLogger(__name__)


class Transfer:
    """A prefill's KV handle, where it is held, and whether a decode worker pulled it yet."""

    __slots__ = ("is_pulled", "prefill", "prefill_worker")

    def __init__(self, prefill: PrefillReply, prefill_worker: WorkerClient) -> None:
        self.prefill = prefill
        self.prefill_worker = prefill_worker
        self.is_pulled = False

    @property
    def shown_token_ids(self) -> tuple[int, ...]:
        """The prefill's first token when the client has it (the decode does not repeat it)."""
        return () if self.prefill.decode_repeats_first_token else self.prefill.first_token.token_ids


class Decoding:
    def __init__(self, dispatcher: Dispatcher, calls: WorkerCalls) -> None:
        self._dispatcher = dispatcher
        self._cluster = dispatcher.cluster
        self._calls = calls

    async def decode(
        self,
        ctx: RequestContext,
        stage: Stage,
        first_choice: Picked,
        transfer: Transfer | None = None,
    ) -> AsyncGenerator[GenerationEvent, None]:
        """The answer's decode on `first_choice`, with `transfer`'s KV or prefilling
        locally. A failed call is retried or migrated (`after_failure`): the next worker
        prefills the prompt and the answer so far and continues after them."""
        workers = self._dispatcher.pool(ctx, stage)
        settings = self._dispatcher.settings_of(ctx)
        limits = DecodeLimits(settings.max_attempts, settings.migration_limit)
        failures = Failures()
        # Every answer token the client has, the prefill's first one included.
        answer: list[int] = [] if transfer is None else list(transfer.shown_token_ids)
        num_cached_tokens = 0  # as a worker last told them, for a finish it did not send
        failed: set[str] = set()
        worker = first_choice
        kv = transfer
        while True:
            num_before = len(answer)
            try:
                events = self._decode_once(ctx, worker, stage, answer, kv)
                async with contextlib.aclosing(events):
                    async for event in events:
                        if isinstance(event, DecodeFinished):
                            num_generated = num_before + event.num_generated_tokens
                            reason = event.finish_reason
                            yield finish_event(ctx, reason, num_generated, event.num_cached_tokens)
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
                    yield finish_event(ctx, "length", len(answer), num_cached_tokens)
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
                failed.add(worker.worker.worker_id)
                # The KV serves the first call only: a failed call may have pulled it (a
                # handle is single-use) before its report reached us, so the next
                # worker prefills the prompt and the answer so far itself.
                kv = None
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
                        worker.worker.worker_id,
                        len(answer),
                        ctx.max_tokens,
                        failures.num_migrations,
                    )
                else:
                    self._calls.metrics.observe_retry(stage)

    async def _decode_once(
        self,
        ctx: RequestContext,
        picked: Picked,
        stage: Stage,
        answer: Sequence[int],
        transfer: Transfer | None,
    ) -> AsyncGenerator[TokenEvent | DecodeFinished, None]:
        """One decode call: with `transfer`'s KV, else prefilling the prompt and `answer`
        here. A KV pull is recorded on `transfer`; a P/D request's cached prompt tokens
        are the prefill's."""
        worker = picked.worker
        if transfer is None:
            call = _local_call(ctx, answer)
            uncached = picked.num_uncached_tokens(len(ctx.prompt_token_ids)) + len(answer)
            load = self._cluster.prefilling(worker.worker_id, uncached)
        else:
            call = _decode_call(ctx, transfer.prefill)
            load = self._cluster.decoding(worker.worker_id, _num_blocks(ctx, worker))
        self._dispatcher.sent(ctx, picked)
        is_first_token = True
        stream = self._decode_stream(ctx, worker, stage, call)
        # Closed when the consumer stops early (in place: a relaying generator between
        # would cost a resumption per event).
        with load:
            async with contextlib.aclosing(stream):
                async for decoded in stream:
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
                        yield telling_cached(decoded, transfer.prefill)
                    else:
                        yield decoded

    def _observe_pull(self, transfer: Transfer, pulled: KvPulled) -> None:
        if pulled.num_bytes and transfer.prefill.kv is not None:  # vLLM does not say
            seconds = pulled.transfer_ms / 1000
            connector = transfer.prefill.kv.connector
            self._calls.metrics.observe_kv_transfer(connector, pulled.num_bytes, seconds)

    async def _decode_stream(
        self, ctx: RequestContext, worker: WorkerClient, stage: Stage, call: DecodeCall
    ) -> AsyncGenerator[DecodeEvent, None]:
        """The worker's decode stream; cancelled on close, an error if it ends early or
        pauses past `tokenIdleS` once it streams tokens."""
        timeouts = self._dispatcher.settings_of(ctx).timeouts
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


def telling_cached(event: TokenEvent, prefill: PrefillReply) -> TokenEvent:
    """`event` telling the prefill's cached prompt tokens: a P/D request's, as its finish
    reports them (not the decode worker's), for a stream a stop sequence cuts short."""
    return dataclasses.replace(event, cached_prompt_tokens=prefill.num_cached_tokens)


def _block_size(worker: WorkerClient) -> int:
    return worker.identity.block_size_tokens


def _num_blocks(ctx: RequestContext, worker: WorkerClient) -> int:
    return -(-len(ctx.prompt_token_ids) // _block_size(worker))


def finish_event(
    ctx: RequestContext, reason: str, num_generated: int, num_cached: int
) -> FinishEvent:
    num_prompt_tokens = len(ctx.prompt_token_ids)
    return FinishEvent(
        finish_reason=reason,
        prompt_tokens=num_prompt_tokens,
        completion_tokens=num_generated,
        # A migrated answer's last worker counts its cache of the prompt and the answer.
        cached_prompt_tokens=min(num_cached, num_prompt_tokens),
    )
