"""The suite's table: each policy's goodput per workload, the subject's ratios to the best
peer and to the baseline, and their geometric means over the workloads. Pure.

A goodput search ends in one of three ways, so a goodput is an interval of rate scales:

    found 2.48            [2.48, 2.48]   (exact to the search's tolerance)
    capped: high passed   [64, ∞)        "≥ 64×"
    missed its lowest     (0, 0.0625)    "< 0.0625×"

and a ratio of two goodputs is the interval [a.lo / b.hi, a.hi / b.lo]: exact when both
are, "≥ x" or "< x" when one end is open, unknown when both are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from triskel.simulator.goodput import GoodputResult


class Kind(StrEnum):
    EXACT = "exact"
    AT_LEAST = "atLeast"
    BELOW = "below"


@dataclass(frozen=True, slots=True)
class Bounded:
    """A number, or a bound on it (`kind`)."""

    value: float
    kind: Kind = Kind.EXACT

    def cell(self, pattern: str) -> str:
        prefix = {Kind.EXACT: "", Kind.AT_LEAST: "≥ ", Kind.BELOW: "< "}[self.kind]
        return prefix + pattern.format(self.value) + "×"

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "kind": str(self.kind)}


def goodput_of(search: GoodputResult) -> Bounded:
    """The goodput (rate scale) a search found, or the bound it reached."""
    if search.best is None:
        return Bounded(min(p.rate_scale for p in search.probes), Kind.BELOW)
    return Bounded(search.best.rate_scale, Kind.AT_LEAST if search.is_capped else Kind.EXACT)


def ratio(top: Bounded, bottom: Bounded) -> Bounded | None:
    """`top ÷ bottom` as far as the two determine it; None when they do not bound it."""
    low = 0.0 if top.kind is Kind.BELOW or bottom.kind is Kind.AT_LEAST else None
    high = math.inf if top.kind is Kind.AT_LEAST or bottom.kind is Kind.BELOW else None
    if low is not None and high is not None:
        return None
    if high is not None:
        # top ≥ t and bottom = b, or top = t and bottom < b: the ratio exceeds t / b.
        return Bounded(top.value / bottom.value, Kind.AT_LEAST)
    if low is not None:
        return Bounded(top.value / bottom.value, Kind.BELOW)
    return Bounded(top.value / bottom.value)


def best_of(goodputs: Mapping[str, Bounded], names: Sequence[str]) -> str:
    """The name whose goodput is highest (a bound counts as its value; first on a tie)."""
    return max(names, key=lambda name: goodputs[name].value)


def geometric_mean(values: Sequence[float]) -> float:
    """exp(mean(log v)): the mean of ratios, where 2× and 0.5× cancel out."""
    if not values:
        raise ValueError("geometric_mean: needs at least one value")
    if any(not v > 0 for v in values):
        raise ValueError(f"geometric_mean: values must be > 0, got {list(values)}")
    return math.exp(math.fsum(math.log(v) for v in values) / len(values))


def mean_ratio(ratios: Sequence[Bounded | None]) -> Bounded | None:
    """The geometric mean of the known ratios; a bound when some are bounds in one
    direction (then the mean is bounded the same way), None when bounds disagree or
    none is known."""
    known = [r for r in ratios if r is not None]
    kinds = {r.kind for r in known} - {Kind.EXACT}
    if not known or len(kinds) > 1:
        return None
    return Bounded(geometric_mean([r.value for r in known]), kinds.pop() if kinds else Kind.EXACT)


@dataclass(frozen=True, slots=True)
class WorkloadRow:
    workload: str
    num_requests: int
    goodputs: Mapping[str, Bounded]
    """By policy name: every policy of the suite."""


@dataclass(frozen=True, slots=True)
class Columns:
    """Which policies the ratios compare, and the order the table shows them."""

    subject: str
    baseline: str
    peers: tuple[str, ...]

    @property
    def policies(self) -> tuple[str, ...]:
        return (self.baseline, *self.peers, self.subject)


def vs_best_peer(row: WorkloadRow, columns: Columns) -> Bounded | None:
    best = best_of(row.goodputs, columns.peers)
    return ratio(row.goodputs[columns.subject], row.goodputs[best])


def vs_baseline(row: WorkloadRow, columns: Columns) -> Bounded | None:
    return ratio(row.goodputs[columns.subject], row.goodputs[columns.baseline])


def suite_table(rows: Sequence[WorkloadRow], columns: Columns) -> str:
    """One Markdown table: a row per workload, then the geometric means."""
    subject, baseline = columns.subject, columns.baseline
    header = (
        "Workload",
        "Requests",
        *columns.policies,
        "Best peer",
        f"{subject} ÷ best peer",
        f"{subject} ÷ {baseline}",
    )
    lines = [_line(header), _line(tuple("---" for _ in header))]
    for row in rows:
        lines.append(
            _line(
                (
                    row.workload,
                    f"{row.num_requests:,}",
                    *(row.goodputs[name].cell("{:.3g}") for name in columns.policies),
                    best_of(row.goodputs, columns.peers),
                    _ratio_cell(vs_best_peer(row, columns)),
                    _ratio_cell(vs_baseline(row, columns)),
                )
            )
        )
    means = (
        mean_ratio([vs_best_peer(row, columns) for row in rows]),
        mean_ratio([vs_baseline(row, columns) for row in rows]),
    )
    blanks = tuple("" for _ in range(len(columns.policies) + 2))
    lines.append(_line(("**Geometric mean**", *blanks, *(f"**{_ratio_cell(m)}**" for m in means))))
    return "\n".join(lines) + "\n"


def summary_json(rows: Sequence[WorkloadRow], columns: Columns) -> dict[str, Any]:
    """The table's numbers, unrounded, for `json.dumps`."""

    def as_json(value: Bounded | None) -> dict[str, Any] | None:
        return None if value is None else value.as_json()

    return {
        "subject": columns.subject,
        "baseline": columns.baseline,
        "peers": list(columns.peers),
        "workloads": [
            {
                "workload": row.workload,
                "numRequests": row.num_requests,
                "goodput": {name: row.goodputs[name].as_json() for name in columns.policies},
                "bestPeer": best_of(row.goodputs, columns.peers),
                "vsBestPeer": as_json(vs_best_peer(row, columns)),
                "vsBaseline": as_json(vs_baseline(row, columns)),
            }
            for row in rows
        ],
        "geometricMean": {
            "vsBestPeer": as_json(mean_ratio([vs_best_peer(row, columns) for row in rows])),
            "vsBaseline": as_json(mean_ratio([vs_baseline(row, columns) for row in rows])),
        },
    }


def _ratio_cell(value: Bounded | None) -> str:
    return "–" if value is None else value.cell("{:.2f}")


def _line(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"
