"""What the workers themselves counted during a replay, from their /metrics.

A router's own view of where requests went and what its caches hit is what is
being compared, so the report takes these numbers from the workers (vLLM's metric
names, served by the mock worker's vLLM-compatible API): read before and after the
replay, and subtract.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from support.peer_routers import HttpWorker, worker_totals

PREFIX_HITS = "vllm:prefix_cache_hits_total"
PREFIX_QUERIES = "vllm:prefix_cache_queries_total"
REQUESTS_DONE = "vllm:request_success_total"


@dataclass(frozen=True, slots=True)
class FleetCounters:
    """Counter totals at one moment: prompt tokens looked up and found in a prefix
    cache, over the fleet; finished requests per worker id."""

    num_prefix_hit_tokens: float
    num_prefix_query_tokens: float
    requests_by_worker: dict[str, float]

    def since(self, earlier: FleetCounters) -> FleetCounters:
        return FleetCounters(
            self.num_prefix_hit_tokens - earlier.num_prefix_hit_tokens,
            self.num_prefix_query_tokens - earlier.num_prefix_query_tokens,
            {
                worker: count - earlier.requests_by_worker.get(worker, 0.0)
                for worker, count in self.requests_by_worker.items()
            },
        )

    @property
    def prefix_hit_ratio(self) -> float | None:
        """Hit tokens / looked-up tokens; None when nothing was looked up."""
        if self.num_prefix_query_tokens <= 0:
            return None
        return self.num_prefix_hit_tokens / self.num_prefix_query_tokens


async def read_counters(workers: Sequence[HttpWorker]) -> FleetCounters:
    """Every worker's counters now; PeerRouterError when one does not answer."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10.0)) as session:
        hits, queries, done = await asyncio.gather(
            worker_totals(session, workers, PREFIX_HITS),
            worker_totals(session, workers, PREFIX_QUERIES),
            worker_totals(session, workers, REQUESTS_DONE),
        )
    return FleetCounters(sum(hits.values()), sum(queries.values()), done)


def load_imbalance(requests_by_worker: dict[str, float], roles: dict[str, str]) -> float | None:
    """Busiest worker's finished requests / the mean, within a role, worst role.

    1.0 is perfect balance. Roles are judged apart: in P/D every request ends on a
    decode worker but not every one visits a prefill worker. None when no worker of
    any role finished a request.
    """
    worst = None
    for role in set(roles.values()):
        counts = [n for worker, n in requests_by_worker.items() if roles.get(worker) == role]
        mean = sum(counts) / len(counts) if counts else 0.0
        if mean > 0:
            worst = max(worst or 0.0, max(counts) / mean)
    return worst
