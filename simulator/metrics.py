"""What a run achieved: SLO attainment, latency percentiles, throughput, cache and balance.

The latency metrics follow DistServe (Zhong et al., "DistServe: Disaggregating Prefill
and Decoding for Goodput-optimized Large Language Model Serving", OSDI 2024):

- TTFT, time to first token: first token minus arrival.
- TPOT, time per output token: mean gap between output tokens after the first.
- SLO attainment: the share of requests meeting *both* a TTFT and a TPOT target.
- Goodput: the highest request rate whose attainment reaches a target such as 90 %
  (searched in `goodput.py`; this module measures one run).

Pure: `summarize` reads a `RunResult` and computes numbers, nothing else.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from triskel.simulator.records import InstanceRecord, RequestRecord, RunResult


@dataclass(frozen=True, slots=True)
class SloTargets:
    """Per-request latency targets and the attainment that counts as "meeting the SLO"."""

    ttft_s: float
    tpot_s: float
    attainment_target: float = 0.9

    def __post_init__(self) -> None:
        if not self.ttft_s > 0:
            raise ValueError(f"SloTargets: ttft_s must be > 0, got {self.ttft_s}")
        if not self.tpot_s > 0:
            raise ValueError(f"SloTargets: tpot_s must be > 0, got {self.tpot_s}")
        if not 0 < self.attainment_target <= 1:
            raise ValueError(
                f"SloTargets: attainment_target must be in (0, 1], got {self.attainment_target}"
            )


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Nearest-rank p50 / p90 / p99 of one latency, in seconds."""

    p50_s: float
    p90_s: float
    p99_s: float


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """The summary of one run; `None` marks a number the run cannot define."""

    policy: str
    rate_scale: float
    num_requests: int
    num_finished: int
    num_failed: int
    slo_attainment: float
    """Share of all requests meeting both targets; a failed request is a miss."""
    ttft: Percentiles | None
    """Over finished requests; None when none finished."""
    tpot: Percentiles | None
    request_rate_per_s: float | None
    """Offered load: arrivals per second, (n - 1) / (last - first arrival).

    n arrivals delimit n - 1 gaps; None with fewer than two requests or one instant.
    """
    throughput_requests_per_s: float | None
    """Finished requests over the run's duration; None when the duration is 0."""
    throughput_output_tokens_per_s: float | None
    prefix_hit_ratio: float
    """Cached prompt tokens / prompt tokens, over all requests."""
    load_imbalance: float | None
    """Max / mean busy time within a role, worst role; 1.0 is perfect balance.

    Prefill and decode instances do different work, so comparing their busy times
    would report imbalance that no router could remove; each role is judged alone.
    A role whose instances were all idle counts as balanced (1.0). None without
    instance records (a live benchmark may not have them).
    """
    kv_bytes_moved: int


def nearest_rank(values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile: the smallest value with >= `percent` % of values at or below.

    For sorted x_1 <= ... <= x_n it is x_k with k = ceil(percent / 100 * n), and x_1
    for percent 0. Unlike interpolating methods it always returns an observed value,
    so "p99 TTFT" is a latency some request really saw.
    """
    if not values:
        raise ValueError("nearest_rank: no values")
    if not 0 <= percent <= 100:
        raise ValueError(f"nearest_rank: percent must be in [0, 100], got {percent}")
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(result: RunResult, slo: SloTargets) -> RunMetrics:
    """The metrics of `result` against `slo`; ValueError for a run without requests.

    An empty run has no attainment to report (0 % and 100 % would both mislead a
    goodput search), so it is refused rather than given a made-up value.
    """
    requests = result.requests
    if not requests:
        raise ValueError(
            f"run {result.policy} at rate scale {result.rate_scale}: no requests to summarize"
        )
    finished = [r for r in requests if r.is_finished]
    ttfts = [r.ttft_s for r in finished if r.ttft_s is not None]
    tpots = [r.tpot_s for r in finished if r.tpot_s is not None]
    num_met = sum(1 for r in finished if meets_slo(r, slo))
    num_output_tokens = sum(r.num_output_tokens for r in finished)
    duration_s = result.duration_s
    return RunMetrics(
        policy=result.policy,
        rate_scale=result.rate_scale,
        num_requests=len(requests),
        num_finished=len(finished),
        num_failed=len(requests) - len(finished),
        slo_attainment=num_met / len(requests),
        ttft=_percentiles(ttfts),
        tpot=_percentiles(tpots),
        request_rate_per_s=arrival_rate([r.arrival_s for r in requests]),
        throughput_requests_per_s=len(finished) / duration_s if duration_s > 0 else None,
        throughput_output_tokens_per_s=num_output_tokens / duration_s if duration_s > 0 else None,
        prefix_hit_ratio=(
            sum(r.num_cached_tokens for r in requests) / sum(r.num_input_tokens for r in requests)
        ),
        load_imbalance=load_imbalance(result.instances),
        kv_bytes_moved=sum(r.kv_bytes_moved for r in requests),
    )


def load_imbalance(instances: Sequence[InstanceRecord]) -> float | None:
    """Max / mean busy time per role, worst role (see `RunMetrics.load_imbalance`)."""
    if not instances:
        return None
    busy_by_role: dict[str, list[float]] = defaultdict(list)
    for instance in instances:
        busy_by_role[instance.role].append(instance.busy_s)
    worst = 1.0
    for busy in busy_by_role.values():
        mean_s = sum(busy) / len(busy)
        if mean_s > 0:
            worst = max(worst, max(busy) / mean_s)
    return worst


def meets_slo(request: RequestRecord, slo: SloTargets) -> bool:
    """True if `request` finished within both targets (a failed request misses)."""
    ttft_s, tpot_s = request.ttft_s, request.tpot_s
    return (
        ttft_s is not None and tpot_s is not None and ttft_s <= slo.ttft_s and tpot_s <= slo.tpot_s
    )


def _percentiles(values: Sequence[float]) -> Percentiles | None:
    if not values:
        return None
    return Percentiles(
        p50_s=nearest_rank(values, 50),
        p90_s=nearest_rank(values, 90),
        p99_s=nearest_rank(values, 99),
    )


def arrival_rate(arrivals_s: Sequence[float]) -> float | None:
    """Requests per second offered by these arrival times (None for fewer than two, or
    all at once)."""
    if len(arrivals_s) < 2:
        return None
    span_s = max(arrivals_s) - min(arrivals_s)
    if span_s <= 0:
        return None
    return (len(arrivals_s) - 1) / span_s
