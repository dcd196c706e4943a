"""How a request runs on workers: the walk (`triskel.router.scheduling.walk`) driven on
live workers, with retries and migration.

The walk decides what to pick and where the request prefills (unified, always,
conditional, adaptive, never); this module makes the calls. A stage whose worker
fails before it produced anything is retried on another worker (up to `maxAttempts`,
the one rule of `after_failure`). A decode worker that fails is replaced by another
decode (or unified) worker that prefills the prompt and the answer so far itself and
continues after them (`triskel.router.decoding`: a retry, or request migration,
`triskel.router.migration`, up to `migrationLimit` times).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Callable

from triskel.common.api import Role
from triskel.router.decoding import Decoding, Transfer, finish_event, telling_cached
from triskel.router.dispatcher import Dispatcher, Picked
from triskel.router.held_prefills import HeldPrefills
from triskel.router.migration import DecodeLimits, Failures, Next, after_failure
from triskel.router.registry import ModelPools, ServingMode
from triskel.router.scheduling.calibration import Calibration
from triskel.router.scheduling.hold import PrefillHold
from triskel.router.scheduling.latency_watch import LatencyWatch
from triskel.router.scheduling.placement import Answer, Budgets, Candidate
from triskel.router.scheduling.plugins.dualmap.rebalance import QueuedRequest
from triskel.router.scheduling.types import Endpoint, Stage
from triskel.router.scheduling.walk import Local, Pick, Prefill, Walk, next_step
from triskel.router.stages.base import RequestContext
from triskel.router.types import FinishEvent, GenerationEvent, ServiceError, TokenEvent
from triskel.router.worker_calls import WorkerCalls
from triskel.router.worker_client import (
    PrefillCall,
    PrefillReply,
    WorkerClient,
)


class Flows:
    def __init__(
        self,
        dispatcher: Dispatcher,
        calls: WorkerCalls,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dispatcher = dispatcher
        self._cluster = dispatcher.cluster
        self._calls = calls
        self._decoding = Decoding(dispatcher, calls)
        self._clock = clock
        # Observed ÷ predicted latencies per worker, for adaptive disaggregation.
        self._calibration = Calibration()
        # Per model: prefills held for busy workers (routing.prefillHold), and the
        # model's workers as the latest request saw them.
        self._held: dict[str, HeldPrefills] = {}
        self._pools: dict[str, ModelPools] = {}

    async def run(self, ctx: RequestContext) -> AsyncGenerator[GenerationEvent, None]:
        """The request's answer, its walk driven step by step."""
        settings = self._dispatcher.settings_of(ctx)
        pools = ctx.model_pools
        num_prompt_tokens = len(ctx.prompt_token_ids)
        walk = Walk(
            policy=settings.disaggregation,
            is_unified=pools.mode is not ServingMode.DISAGGREGATED,
            answer=Answer(num_prompt_tokens, ctx.max_tokens),
            budgets=Budgets(settings.slo.ttft_ms, settings.slo.tpot_ms),
        )
        picks: dict[str, Picked] = {}
        transfer: Transfer | None = None
        watch: LatencyWatch | None = None
        try:
            while True:
                step = next_step(walk, self._calibration)
                if isinstance(step, Pick):
                    picked = await self._dispatcher.pick(
                        step.stage, ctx, self._dispatcher.pool(ctx, step.stage)
                    )
                    picks[picked.worker.worker_id] = picked
                    uncached = picked.num_uncached_tokens(num_prompt_tokens)
                    walk = walk.picked(step.stage, Candidate(picked.endpoint, uncached))
                    continue
                if isinstance(step, (Local, Prefill)):
                    if not walk.is_unified:
                        is_local = isinstance(step, Local)
                        self._calls.metrics.observe_prefill_placement(pools.model, is_local)
                    if step.expected is not None:
                        watch = LatencyWatch(self._calibration, step.expected, self._clock)
                if isinstance(step, Local):
                    local = _watched(
                        self._decoding.decode(ctx, step.stage, picks[_id(step.worker)]), watch
                    )
                    async with contextlib.aclosing(local):
                        async for event in local:
                            yield event
                    return
                if isinstance(step, Prefill):
                    picked = await self._turn(ctx, picks[_id(step.worker)])
                    if watch is not None and watch.prefill_worker_id != picked.worker.worker_id:
                        watch = None  # moved off a hotspot: not the prediction's worker
                    prefill_worker, prefill = await self._prefill(ctx, picked)
                    if watch is not None:
                        watch.first_token()
                    first_token = telling_cached(prefill.first_token, prefill)
                    if prefill.finish_reason or prefill.kv is None:
                        yield first_token
                        yield finish_event(
                            ctx, prefill.finish_reason or "stop", 1, prefill.num_cached_tokens
                        )
                        return
                    transfer = Transfer(prefill, prefill_worker)
                    if not prefill.decode_repeats_first_token:
                        yield first_token
                    walk = walk.prefilled()
                    continue
                assert transfer is not None  # the walk decodes remotely only once prefilled
                remote = _watched(
                    self._decoding.decode(ctx, Stage.DECODE, picks[_id(step.worker)], transfer),
                    watch,
                )
                async with contextlib.aclosing(remote):
                    async for event in remote:
                        yield event
                return
        finally:
            if transfer is not None and not transfer.is_pulled:
                # Nobody took the KV: free it on the prefill worker now, not at hold expiry.
                await transfer.prefill_worker.cancel(ctx.request.request_id)

    async def _turn(self, ctx: RequestContext, picked: Picked) -> Picked:
        """`picked`, or its runner-up, once the prefill hold lets it go (at once when
        `routing.prefillHold` is off or the worker has room)."""
        held = self._held_prefills(ctx)
        if held is None or picked.second_id is None:
            return picked
        second = self._dispatcher.picked_as(ctx, picked, picked.second_id)
        if second is None:
            return picked
        num_prompt_tokens = len(ctx.prompt_token_ids)
        here = picked.worker.worker_id
        request = QueuedRequest(
            ctx.request.request_id,
            here,
            (here, second.worker.worker_id),
            (
                picked.num_uncached_tokens(num_prompt_tokens),
                second.num_uncached_tokens(num_prompt_tokens),
            ),
        )
        return picked if await held.turn(request) == here else second

    def _held_prefills(self, ctx: RequestContext) -> HeldPrefills | None:
        """The model's prefill hold (None: off), rebuilt when its bound changes."""
        model = ctx.model_pools.model
        self._pools[model] = ctx.model_pools  # the latest view of the model's workers
        max_held = self._dispatcher.settings_of(ctx).prefill_hold.max_per_worker
        if not max_held:
            return None
        held = self._held.get(model)
        if held is None or held.hold.max_per_worker != max_held:

            def endpoints() -> dict[str, Endpoint]:
                workers = self._pools[model].of(Role.PREFILL)
                return {e.worker_id: e for e in self._cluster.endpoints(workers)}

            def observe(num_held: int, num_new_moves: int) -> None:
                self._calls.metrics.observe_held_prefills(model, num_held, num_new_moves)

            held = HeldPrefills(PrefillHold(max_held), endpoints, observe)
            self._held[model] = held
        return held

    async def _prefill(
        self, ctx: RequestContext, first_choice: Picked
    ) -> tuple[WorkerClient, PrefillReply]:
        """Prefill on `first_choice`, retried elsewhere as `after_failure` allows."""
        settings = self._dispatcher.settings_of(ctx)
        limits = DecodeLimits(settings.max_attempts, settings.migration_limit)
        failures = Failures()
        call = PrefillCall(
            request_id=ctx.request.request_id,
            token_ids=ctx.prompt_token_ids,
            max_tokens=ctx.max_tokens,
            kv_hold_ms=settings.timeouts.kv_hold_ms,
            seed=ctx.request.seed,
        )
        failed: set[str] = set()
        picked = first_choice
        while True:
            worker = picked.worker
            self._dispatcher.sent(ctx, picked)
            try:
                with self._cluster.prefilling(
                    worker.worker_id, picked.num_uncached_tokens(len(ctx.prompt_token_ids))
                ):
                    async with self._calls.call(worker, Stage.PREFILL) as guard:
                        reply = await guard.wait(worker.prefill(call, settings.timeouts.prefill_s))
                return worker, reply
            except ServiceError:
                # Nothing was produced: a retry, within maxAttempts, as for a decode.
                decision = after_failure(failures, limits, (), 0, ctx.max_tokens)
                if decision.next is Next.GIVE_UP:
                    raise
                failures = decision.failures
                failed.add(worker.worker_id)
                self._calls.metrics.observe_retry(Stage.PREFILL)
            finally:
                held = self._held.get(ctx.model_pools.model)
                if held is not None:  # the worker has this prompt's room again
                    held.release()
            picked = await self._dispatcher.pick(
                Stage.PREFILL, ctx, self._dispatcher.pool(ctx, Stage.PREFILL), failed
            )


def _id(candidate: Candidate) -> str:
    return candidate.endpoint.worker_id


def _watched(
    events: AsyncGenerator[GenerationEvent, None], watch: LatencyWatch | None
) -> AsyncGenerator[GenerationEvent, None]:
    """`events`, timing the first token and the finish for `watch` when there is one
    (without, `events` itself: no relaying generator, no resumption per event)."""
    return events if watch is None else _timed(events, watch)


async def _timed(
    events: AsyncGenerator[GenerationEvent, None], watch: LatencyWatch
) -> AsyncGenerator[GenerationEvent, None]:
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, TokenEvent):
                watch.first_token()
            elif isinstance(event, FinishEvent):
                watch.finished(event.completion_tokens)
            yield event
