"""The side-by-side report of `compare_routers.py`: one row per shape × router × policy. Pure.

Columns (latencies at the client, wall clock):
- added TTFT at each probe rate: small distinct prompts, streamed, at a fixed rate (20
  and 200 requests/s by default, issue 21's two points), sent straight to the fleet's
  workers (spread over them in turn, as the router spreads them) and then through the
  router; "added" is the difference of the TTFT percentiles (paired on the same fleet, so
  machine drift between runs cancels).
- sustained req/s, TTFT / TPOT p50 / p99, SLO attainment: the trace replayed open loop.
- prefix hit ratio: from the workers' own counters (vLLM's
  `vllm:prefix_cache_hits_total` / `vllm:prefix_cache_queries_total`, summed over the
  fleet, delta over the replay), so no router's claim about its own hits is trusted;
  load imbalance likewise from each worker's finished requests (busiest / mean, per role).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from triskel.simulator.metrics import Percentiles, RunMetrics

_MISSING = "–"


@dataclass(frozen=True, slots=True)
class ProbePair:
    """The probe at one rate, straight to the workers and through the router."""

    rate_per_s: float
    direct: RunMetrics
    routed: RunMetrics

    def added_ms(self) -> tuple[float, float] | None:
        """Routed TTFT p50 and p99 minus the direct ones, in ms; None unless both finished
        some requests."""
        routed, direct = self.routed.ttft, self.direct.ttft
        if routed is None or direct is None:
            return None
        return 1000 * (routed.p50_s - direct.p50_s), 1000 * (routed.p99_s - direct.p99_s)


@dataclass(frozen=True, slots=True)
class Row:
    """One contender on one shape; `error` set when it could not run at all."""

    shape: str
    router: str
    policy: str
    probes: tuple[ProbePair, ...] = ()
    trace: RunMetrics | None = None
    worker_prefix_hit_ratio: float | None = None
    # Trace requests each worker finished (its own counter), and busiest / mean.
    requests_by_worker: dict[str, float] = field(default_factory=dict)
    load_imbalance: float | None = None
    # Why trace requests failed: reason → how many.
    failures: dict[str, int] = field(default_factory=dict)
    error: str | None = None


_LEADING = ("Shape", "Router", "Policy")
_TRAILING = (
    "Sustained (req/s)",
    "TTFT p50 / p99 (s)",
    "TPOT p50 / p99 (ms)",
    "Prefix hit ratio (workers)",
    "Load imbalance",
    "SLO attainment",
    "Failed",
)


def comparison_table(rows: Sequence[Row], probe_rates: Sequence[float]) -> str:
    """A Markdown table of `rows`, in their order: an added-TTFT column per probe rate."""
    header = (
        *_LEADING,
        *(f"Added TTFT at {rate:g}/s p50 / p99 (ms)" for rate in probe_rates),
        *_TRAILING,
    )
    lines = [_cells(header), _cells(tuple("---" for _ in header))]
    for row in rows:
        if row.error is not None:
            lines.append(_cells((row.shape, row.router, row.policy, f"not run: {row.error}")))
            continue
        trace = row.trace
        by_rate = {pair.rate_per_s: pair.added_ms() for pair in row.probes}
        added = tuple(
            _MISSING if (ms := by_rate.get(rate)) is None else f"{ms[0]:+.1f} / {ms[1]:+.1f}"
            for rate in probe_rates
        )
        lines.append(
            _cells(
                (
                    row.shape,
                    row.router,
                    row.policy,
                    *added,
                    _number(trace.throughput_requests_per_s if trace else None, "{:.2f}"),
                    _pair(trace.ttft if trace else None, 1, "{:.3f}"),
                    _pair(trace.tpot if trace else None, 1000, "{:.1f}"),
                    _number(row.worker_prefix_hit_ratio, "{:.1%}"),
                    _number(row.load_imbalance, "{:.2f}"),
                    _number(trace.slo_attainment if trace else None, "{:.1%}"),
                    _MISSING if trace is None else f"{trace.num_failed} / {trace.num_requests}",
                )
            )
        )
    return "\n".join(lines) + "\n"


def to_json(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The rows' numbers, unrounded, as JSON-serialisable dicts."""
    documents = []
    for row in rows:
        documents.append(
            {
                "shape": row.shape,
                "router": row.router,
                "policy": row.policy,
                "probes": [
                    {
                        "ratePerS": pair.rate_per_s,
                        "direct": asdict(pair.direct),
                        "routed": asdict(pair.routed),
                        "addedTtftMs": None
                        if (added := pair.added_ms()) is None
                        else {"p50": added[0], "p99": added[1]},
                    }
                    for pair in row.probes
                ],
                "trace": _as_dict(row.trace),
                "workerPrefixHitRatio": row.worker_prefix_hit_ratio,
                "requestsByWorker": row.requests_by_worker,
                "loadImbalance": row.load_imbalance,
                "failures": row.failures,
                "error": row.error,
            }
        )
    return documents


def _as_dict(metrics: RunMetrics | None) -> dict[str, Any] | None:
    return None if metrics is None else asdict(metrics)


def _pair(percentiles: Percentiles | None, scale: float, pattern: str) -> str:
    if percentiles is None:
        return _MISSING
    return (
        f"{pattern.format(percentiles.p50_s * scale)} / {pattern.format(percentiles.p99_s * scale)}"
    )


def _number(value: float | None, pattern: str) -> str:
    return _MISSING if value is None else pattern.format(value)


def _cells(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"
