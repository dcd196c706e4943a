"""The comparison of policies that `triskel simulate` and `triskel bench` print and save.

One row per policy, in the order given (callers order them as they want them read):
goodput (DistServe, Zhong et al., OSDI 2024), SLO attainment, TTFT / TPOT percentiles,
prefix-cache hit ratio against the infinite-cache bound, load imbalance, KV moved.
`comparison_table` renders Markdown; `to_json` gives the same numbers, unrounded, as
plain dicts and lists for `json.dumps`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from triskel.simulator.goodput import GoodputResult
from triskel.simulator.metrics import Percentiles, RunMetrics

PolicyRow = tuple[str, RunMetrics, GoodputResult | None]
"""A policy's name, its metrics at the reported rate, its goodput search (if run)."""

_BYTES_PER_GB = 1e9
"""Decimal gigabytes, as network links are rated."""

_MISSING = "–"

_HEADER = (
    "Policy",
    "Goodput (× rate)",
    "Goodput (req/s)",
    "SLO attainment",
    "TTFT p50 / p99 (s)",
    "TPOT p50 / p99 (ms)",
    "Prefix hit ratio",
    "% of hit bound",
    "Load imbalance",
    "KV moved (GB)",
)


def comparison_table(rows: list[PolicyRow], bound: float | None) -> str:
    """A Markdown table of `rows`; `bound` is the infinite-cache hit ratio, if known."""
    lines = [_row(_HEADER), _row(tuple("---" for _ in _HEADER))]
    for name, metrics, goodput in rows:
        lines.append(
            _row(
                (
                    name,
                    _goodput_scale(goodput),
                    _number(goodput.request_rate_per_s if goodput else None, "{:.2f}"),
                    f"{metrics.slo_attainment:.1%}",
                    _latency_pair(metrics.ttft, scale=1.0, pattern="{:.3f}"),
                    _latency_pair(metrics.tpot, scale=1000.0, pattern="{:.1f}"),
                    f"{metrics.prefix_hit_ratio:.1%}",
                    _number(_share_of_bound(metrics.prefix_hit_ratio, bound), "{:.0%}"),
                    _number(metrics.load_imbalance, "{:.2f}"),
                    f"{metrics.kv_bytes_moved / _BYTES_PER_GB:.2f}",
                )
            )
        )
    return "\n".join(lines) + "\n"


def to_json(rows: list[PolicyRow], bound: float | None) -> dict[str, Any]:
    """The numbers of `comparison_table` as JSON-serialisable dicts, lists and scalars."""
    return {
        "prefix_hit_bound": bound,
        "policies": [
            {
                "policy": name,
                "metrics": asdict(metrics),
                "prefix_hit_share_of_bound": _share_of_bound(metrics.prefix_hit_ratio, bound),
                "goodput": None if goodput is None else asdict(goodput),
            }
            for name, metrics, goodput in rows
        ],
    }


def _share_of_bound(hit_ratio: float, bound: float | None) -> float | None:
    # A zero bound means the trace shares no prefix: no share of it is meaningful.
    return hit_ratio / bound if bound else None


def _goodput_scale(goodput: GoodputResult | None) -> str:
    if goodput is None:
        return _MISSING
    if goodput.best is None:
        # Even the lowest probed rate missed the target.
        lowest = min(p.rate_scale for p in goodput.probes)
        return f"< {lowest:g}×"
    prefix = "≥ " if goodput.is_capped else ""
    return f"{prefix}{goodput.best.rate_scale:.3g}×"


def _latency_pair(percentiles: Percentiles | None, scale: float, pattern: str) -> str:
    if percentiles is None:
        return _MISSING
    return (
        f"{pattern.format(percentiles.p50_s * scale)} / {pattern.format(percentiles.p99_s * scale)}"
    )


def _number(value: float | None, pattern: str) -> str:
    return _MISSING if value is None else pattern.format(value)


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"
