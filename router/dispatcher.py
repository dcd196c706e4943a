"""Choosing a worker for one stage of one request: the scheduler over live endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import NamedTuple

from triskel.common.api import Role
from triskel.common.hashing import BlockHash
from triskel.common.routing_api import RoutingSettings
from triskel.router.cluster import ClusterView
from triskel.router.metrics import RouterMetrics
from triskel.router.routing_table import RoutingTable
from triskel.router.scheduling.hold import runner_up
from triskel.router.scheduling.producers.routing_history import RoutingHistory
from triskel.router.scheduling.types import Endpoint, NoEndpointError, SchedulingRequest, Stage
from triskel.router.siblings.frames import SharedPick
from triskel.router.stages.base import RequestContext
from triskel.router.unavailable import unavailable
from triskel.router.worker_client import WorkerClient


class Dispatcher:
    def __init__(
        self,
        cluster: ClusterView,
        table: RoutingTable,
        metrics: RouterMetrics,
        history: RoutingHistory,
        share_prefix_history: bool = False,
        share_pick: Callable[[SharedPick], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.table = table
        self._metrics = metrics
        # With shared state, every replica's picks feed every replica's prefix scores.
        self._share_prefix_history = share_prefix_history
        # With sibling processes (`--processes N`): each pick goes to them (`learn`).
        self._share_pick = share_pick
        # Workers that publish no KV events (vLLM's HTTP API): what they likely cache is
        # what this router sent them (the routing history the scheduler writes), so that
        # disaggregation decisions still see their cached prefixes.
        self._history = history
        # When the last pick began (monotonic seconds) and for which model: the pick
        # warmer (pick_warmer.py) waits for a pause, then warms that model's picks.
        self.last_pick_s = 0.0
        self.last_model: str | None = None

    def settings_of(self, ctx: RequestContext) -> RoutingSettings:
        return self.table.for_model(ctx.model_pools.model).settings

    def pool(self, ctx: RequestContext, stage: Stage) -> Sequence[WorkerClient]:
        """The request's model's workers serving `stage`."""
        return ctx.model_pools.of(ROLES[stage])

    async def pick(
        self,
        stage: Stage,
        ctx: RequestContext,
        workers: Sequence[WorkerClient],
        exclude: Collection[str] = (),
    ) -> Picked:
        """The scheduler's choice among the healthy `workers` not in `exclude`.

        Picking records nothing: a worker is recorded as sent the prompt when a call
        goes to it (`sent`), so a pick only compared (adaptive disaggregation) leaves
        no trace."""
        self.last_pick_s = time.monotonic()
        self.last_model = ctx.model_pools.model
        routing = self.table.for_model(ctx.model_pools.model)
        candidates = self.cluster.candidates(workers, exclude)
        # Encoding runs before tokenization: there is no prompt to hash yet.
        has_prompt = stage is not Stage.ENCODE
        block_hashes = ctx.block_hashes if has_prompt else []
        shared_matches: dict[str, int] = {}
        if self._share_prefix_history and block_hashes:
            ids = candidates.worker_ids
            lengths = await self.cluster.state.prefixes.match_lengths(block_hashes, ids)
            shared_matches = dict(zip(ids, lengths, strict=True))
        request = self.scheduling_request(
            routing.settings,
            workers,
            request_id=ctx.request.request_id,
            model=ctx.model_pools.model,
            stage=stage,
            token_ids=ctx.prompt_token_ids if has_prompt else (),
            block_hashes=block_hashes,
            max_tokens=ctx.max_tokens,
            headers=ctx.request.headers,
            shared_prefix_matches=shared_matches,
        )
        try:
            decision = routing.scheduler.choose(request, candidates)
        except NoEndpointError as error:
            what = f"no {stage} worker is available for model {ctx.model_pools.model}"
            raise unavailable(what, str(error)) from None
        worker_id = decision.endpoint.worker_id
        self._metrics.observe_decision(stage, decision.reason, worker_id, decision.plugin_seconds)
        client = self.cluster.client(worker_id)
        num_cached = self._num_cached_blocks(block_hashes, client) if block_hashes else 0
        # A prefill's runner-up is where a held prefill may move (`routing.prefillHold`);
        # without a hold nobody asks, so the hot path does not look for it.
        is_holding = stage is Stage.PREFILL and routing.settings.prefill_hold.max_per_worker
        second_id = runner_up(decision) if is_holding else None
        return Picked(client, decision.endpoint, num_cached, request, second_id)

    def scheduling_request(
        self,
        settings: RoutingSettings,
        workers: Sequence[WorkerClient],
        *,
        request_id: str,
        model: str,
        stage: Stage,
        token_ids: Sequence[int],
        block_hashes: Sequence[BlockHash],
        max_tokens: int,
        headers: Mapping[str, str] | None = None,
        shared_prefix_matches: Mapping[str, int] | None = None,
    ) -> SchedulingRequest:
        """What the scheduler is asked to pick among `workers`: the request's own fields,
        the model's SLO and the pool's ring (the pick warmer's dry picks are built here
        too, so they run the plugin paths a real pick runs)."""
        return SchedulingRequest(
            request_id=request_id,
            model=model,
            stage=stage,
            token_ids=token_ids,
            block_hashes=block_hashes,
            max_tokens=max_tokens,
            headers={} if headers is None else headers,
            ttft_slo_ms=settings.slo.ttft_ms,
            tpot_slo_ms=settings.slo.tpot_ms,
            shared_prefix_matches={} if shared_prefix_matches is None else shared_prefix_matches,
            ring_members=self.cluster.ring_members(workers),
        )

    def picked_as(self, ctx: RequestContext, picked: Picked, worker_id: str) -> Picked | None:
        """`worker_id` as if picked instead of `picked` now (None when it is gone or
        unhealthy)."""
        try:
            client = self.cluster.client(worker_id)
        except KeyError:
            return None
        endpoints = self.cluster.endpoints([client])
        if not endpoints:
            return None
        block_hashes = ctx.block_hashes
        num_cached = self._num_cached_blocks(block_hashes, client) if block_hashes else 0
        return Picked(client, endpoints[0], num_cached, picked.request)

    def sent(self, ctx: RequestContext, picked: Picked) -> None:
        """Records that `picked` is sent the request: plugins that learn from picks learn
        it, and its prefix scores follow it (shared with other replicas when they share
        state)."""
        request = picked.request
        scheduler = self.table.for_model(ctx.model_pools.model).scheduler
        scheduler.sent(request, picked.endpoint)
        if self._share_pick is not None:
            self._share_pick(SharedPick.of(request, picked.endpoint.worker_id))
        # No hashes: an encode (no prompt yet), or a prompt shorter than a block.
        if self._share_prefix_history and request.block_hashes:
            self.cluster.spawn_write(
                self.cluster.state.prefixes.record(picked.worker.worker_id, request.block_hashes)
            )

    def learn(self, pick: SharedPick) -> None:
        """A sibling process sent `pick`: learn it as `sent` would have (the routing
        history and the scheduler's observers)."""
        endpoint = self.cluster.endpoint_of(pick.worker_id)
        if endpoint is None:
            return  # a worker this process no longer (or not yet) knows
        self.table.for_model(pick.model).scheduler.sent(pick.request(), endpoint)

    def _num_cached_blocks(self, hashes: list[BlockHash], worker: WorkerClient) -> int:
        """Leading prompt blocks `worker` holds, per its KV events (or, for a worker that
        publishes none, per what this router sent it)."""
        if worker.has_kv_events:
            return self.cluster.kv_index.match_lengths(hashes, [worker.worker_id])[0]
        return self._history.estimates().match_lengths(hashes, [worker.worker_id])[0]


# The pool each stage picks from (the pick warmer walks it too).
ROLES = {
    Stage.ENCODE: Role.ENCODE,
    Stage.UNIFIED: Role.UNIFIED,
    Stage.PREFILL: Role.PREFILL,
    Stage.DECODE: Role.DECODE,
}


class Picked(NamedTuple):
    """A pick: the worker, its endpoint as the scheduler saw it, and the leading prompt
    blocks it held then."""

    worker: WorkerClient
    endpoint: Endpoint
    num_cached_blocks: int
    request: SchedulingRequest
    """What the scheduler was asked (told again when the worker is sent it)."""
    second_id: str | None = None
    """A prefill pick's runner-up (DualMap's other ring owner)."""

    def num_uncached_tokens(self, num_prompt_tokens: int) -> int:
        """Prompt tokens the worker lacked when it was picked."""
        return num_prompt_tokens - self.num_cached_blocks * self.worker.identity.block_size_tokens
