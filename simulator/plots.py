"""PNG plots for `triskel simulate --plot`: attainment vs rate, the TTFT CDF, and an
autoscaled run's load, replicas and attainment over time.

matplotlib comes with the optional `plot` extra (`pip install 'triskel[plot]'`), so
the router and operator images do not carry it; it is imported when a plot is drawn.
Figures are drawn on the Agg canvas directly, without pyplot: no global figure
state, no GUI backend, safe in threads and on machines without a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from triskel.simulator.autoscale import TimelinePoint
from triskel.simulator.goodput import GoodputResult
from triskel.simulator.metrics import SloTargets
from triskel.simulator.records import RunResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_SIZE_IN = (6.4, 4.0)
_DPI = 120


def plot_attainment_vs_rate(
    searches: Mapping[str, GoodputResult], target: float, path: Path
) -> Path:
    """One line per policy through its goodput probes, sorted by rate; the target dashed.

    A probe stopped once sure to miss knows only a bound: a "v" (at most this), off the line.
    """
    figure = _new_figure()
    axes = figure.add_subplot()
    for policy, search in searches.items():
        probes = sorted(search.probes, key=lambda p: p.rate_scale)
        exact = [p for p in probes if not p.is_upper_bound]
        bounded = [p for p in probes if p.is_upper_bound]
        (line,) = axes.plot(
            [p.rate_scale for p in exact],
            [p.slo_attainment for p in exact],
            marker="o",
            label=policy,
        )
        if bounded:
            axes.plot(
                [p.rate_scale for p in bounded],
                [p.slo_attainment for p in bounded],
                marker="v",
                linestyle="none",
                color=line.get_color(),
            )
    axes.axhline(target, linestyle="--", color="grey", label=f"target {target:.0%}")
    # Probes double the rate, so a log axis spaces them evenly.
    axes.set_xscale("log", base=2)
    axes.set_xlabel("rate scale (× trace rate)")
    axes.set_ylabel("SLO attainment")
    axes.set_ylim(0.0, 1.05)
    axes.legend()
    return _save(figure, path)


def plot_ttft_cdf(runs: Mapping[str, RunResult], path: Path, slo: SloTargets | None = None) -> Path:
    """The empirical CDF of TTFT over finished requests, one line per policy.

    Failed requests have no TTFT and are left out, so a line tops out at the
    finished share rather than 1: a policy that drops requests shows it.
    """
    figure = _new_figure()
    axes = figure.add_subplot()
    for policy, run in runs.items():
        ttfts_s = sorted(r.ttft_s for r in run.requests if r.is_finished and r.ttft_s is not None)
        axes.step(
            ttfts_s, _cdf_heights(len(ttfts_s), len(run.requests)), where="post", label=policy
        )
    if slo is not None:
        axes.axvline(slo.ttft_s, linestyle="--", color="grey", label=f"TTFT SLO {slo.ttft_s:g} s")
    axes.set_xlabel("TTFT (s)")
    axes.set_ylabel("share of requests")
    axes.set_ylim(0.0, 1.05)
    axes.legend()
    return _save(figure, path)


def plot_autoscale(timelines: Mapping[str, Sequence[TimelinePoint]], path: Path) -> Path:
    """Three panels sharing the time axis: the offered load (as the first policy saw
    it), replicas provisioned per stage and policy, and each policy's SLO attainment
    over the requests that finished in its last observation window."""
    figure = _new_figure()
    figure.set_size_inches(_SIZE_IN[0] * 1.5, _SIZE_IN[1] * 2.2)
    load, replicas, attainment = figure.subplots(3, 1, sharex=True)
    first = next(iter(timelines.values()), [])
    load.plot([p.time_s / 60 for p in first], [p.rate_rps for p in first], color="black")
    load.set_ylabel("arrivals (req/s)")
    for policy, points in timelines.items():
        minutes = [p.time_s / 60 for p in points]
        stages = sorted({stage for p in points for stage in p.replicas})
        for style, stage in zip(("-", "--", ":"), stages, strict=False):
            replicas.plot(
                minutes,
                [p.replicas.get(stage, 0) for p in points],
                linestyle=style,
                label=f"{policy} {stage}",
            )
        attainment.plot(
            minutes,
            [float("nan") if p.attainment is None else p.attainment for p in points],
            label=policy,
        )
    replicas.set_ylabel("replicas")
    replicas.legend(fontsize="small", ncol=2)
    attainment.set_ylabel("SLO attainment")
    attainment.set_ylim(0.0, 1.05)
    attainment.set_xlabel("time (min)")
    attainment.legend(fontsize="small", ncol=2)
    return _save(figure, path)


def _cdf_heights(num_points: int, num_requests: int) -> Sequence[float]:
    # The i-th smallest of n values out of N requests: i / N of requests are at or below it.
    return [(i + 1) / num_requests for i in range(num_points)]


def _new_figure() -> Figure:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("plots need matplotlib: pip install 'triskel[plot]'") from error
    figure = Figure(figsize=_SIZE_IN, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
