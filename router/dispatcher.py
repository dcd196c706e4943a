"""Choosing a worker for one stage of one request: the scheduler over live endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence

from triskel.common.hashing import BlockHash, hash_blocks
from triskel.router.cluster import ClusterView
from triskel.router.metrics import RouterMetrics
from triskel.router.routing_table import RoutingTable
from triskel.router.scheduling.producers.approx_prefix_index import ApproximatePrefixIndex
from triskel.router.scheduling.types import NoEndpointError, SchedulingRequest, Stage
from triskel.router.stages.base import RequestContext
from triskel.router.unavailable import unavailable
from triskel.router.worker_client import WorkerClient


class Dispatcher:
    def __init__(
        self,
        cluster: ClusterView,
        table: RoutingTable,
        metrics: RouterMetrics,
        share_prefix_history: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cluster = cluster
        self.table = table
        self._metrics = metrics
        # With shared state, every replica's picks feed every replica's prefix scores.
        self._share_prefix_history = share_prefix_history
        # Workers that publish no KV events (vLLM's HTTP API): what they likely cache is
        # what this router sent them (llm-d's approximate prefix, LRU + TTL), so that
        # disaggregation decisions still see their cached prefixes.
        self._sent_prefixes = ApproximatePrefixIndex(clock)

    def block_hashes(self, ctx: RequestContext) -> list[BlockHash]:
        """The prompt's block hashes as the model's workers compute them (computed once)."""
        if ctx.block_hashes is None:
            identity = ctx.model_pools.any_worker.identity
            ctx.block_hashes = hash_blocks(
                ctx.prompt_token_ids,
                identity.block_size_tokens,
                identity.model,
                identity.hash_salt,
            )
        return ctx.block_hashes

    async def pick(
        self,
        stage: Stage,
        ctx: RequestContext,
        workers: Sequence[WorkerClient],
        exclude: Collection[str] = (),
    ) -> WorkerClient:
        """The scheduler's choice among the healthy `workers` not in `exclude`."""
        routing = self.table.for_model(ctx.model_pools.model)
        slo = routing.settings.slo
        candidates = [e for e in self.cluster.endpoints(workers) if e.worker_id not in exclude]
        # Encoding runs before tokenization: there is no prompt to hash yet.
        has_prompt = stage is not Stage.ENCODE
        block_hashes = self.block_hashes(ctx) if has_prompt else []
        shared_matches: dict[str, int] = {}
        if self._share_prefix_history and block_hashes:
            ids = [c.worker_id for c in candidates]
            lengths = await self.cluster.state.prefixes.match_lengths(block_hashes, ids)
            shared_matches = dict(zip(ids, lengths, strict=True))
        request = SchedulingRequest(
            request_id=ctx.request.request_id,
            model=ctx.model_pools.model,
            stage=stage,
            token_ids=ctx.prompt_token_ids if has_prompt else (),
            block_hashes=block_hashes,
            max_tokens=ctx.max_tokens,
            headers=ctx.request.headers,
            ttft_slo_ms=slo.ttft_ms,
            tpot_slo_ms=slo.tpot_ms,
            shared_prefix_matches=shared_matches,
            ring_members=self.cluster.ring_members(workers),
        )
        try:
            decision = routing.scheduler.schedule(request, candidates)
        except NoEndpointError as error:
            what = f"no {stage} worker is available for model {ctx.model_pools.model}"
            raise unavailable(what, str(error)) from None
        worker_id = decision.endpoint.worker_id
        self._metrics.observe_decision(stage, decision.reason, worker_id, decision.plugin_seconds)
        if self._share_prefix_history and block_hashes:
            self.cluster.spawn_write(self.cluster.state.prefixes.record(worker_id, block_hashes))
        client = self.cluster.client(worker_id)
        if block_hashes and not client.has_kv_events:
            matched = self._sent_prefixes.match_lengths(block_hashes, [worker_id])[0]
            ctx.cached_blocks_at_pick[worker_id] = matched
            self._sent_prefixes.record(worker_id, block_hashes)
        return client

    def num_cached_blocks(self, ctx: RequestContext, worker: WorkerClient) -> int:
        """Leading prompt blocks `worker` holds, per its KV events (or, for a worker that
        publishes none, per what this router sent it)."""
        hashes = self.block_hashes(ctx)
        if worker.has_kv_events:
            return self.cluster.kv_index.match_lengths(hashes, [worker.worker_id])[0]
        at_pick = ctx.cached_blocks_at_pick.get(worker.worker_id)
        if at_pick is not None:
            return at_pick
        return self._sent_prefixes.match_lengths(hashes, [worker.worker_id])[0]
