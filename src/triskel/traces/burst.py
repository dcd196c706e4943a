"""Bursts laid over a trace: more of its own requests inside one or more windows.

Inside a window [start_s, end_s) every request is copied `factor − 1` times on average
(the fraction by a seeded coin), each copy at a uniformly random time of the window, so
the window carries `factor` times its own traffic with its own length mix. Outside the
windows, nothing changes. The result is re-indexed in arrival order. Used to replay a
real trace with peaks an autoscaler must absorb (docs/benchmarks.md).

    with_burst(trace, 600, 900, 3)                      one window
    with_bursts(trace, [(300, 420, 4), (900, 1020, 4)]) several, which must not overlap

The synthetic generator makes bursts of *new* sessions instead (fresh prompts, not
copies): it draws session starts on a clock that runs `factor` times faster inside the
windows and maps them back with `real_time_s`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace
from itertools import pairwise

from triskel.traces.types import Trace, TraceRequest

# (start_s, end_s, factor)
BurstWindow = tuple[float, float, float]


def with_burst(trace: Trace, start_s: float, end_s: float, factor: float, seed: int = 0) -> Trace:
    return with_bursts(trace, [(start_s, end_s, factor)], seed=seed)


def check_windows(windows: Sequence[BurstWindow]) -> list[BurstWindow]:
    """The windows sorted by start; ValueError when one is empty, shrinks the traffic
    (factor < 1) or overlaps the next."""
    ordered = sorted(windows)
    for start_s, end_s, factor in ordered:
        if not 0.0 <= start_s < end_s:
            raise ValueError(f"burst: need 0 <= start ({start_s:g}) < end ({end_s:g})")
        if not factor >= 1.0:
            raise ValueError(f"burst: factor must be >= 1, got {factor:g}")
    for (_, end_s, _), (start_s, _, _) in pairwise(ordered):
        if start_s < end_s:
            raise ValueError(
                f"burst: windows must not overlap; one ends at {end_s:g} after the next "
                f"starts at {start_s:g}"
            )
    return ordered


def real_time_s(operational_s: float, windows: Sequence[BurstWindow]) -> float:
    """The real time at which a clock running `factor` times faster inside each window
    (and at 1x outside) shows `operational_s`; `windows` as `check_windows` returns them.

    Arrivals drawn at rate r on that clock arrive at r x factor inside the windows and
    at r outside, with the arrival process's own burstiness kept:

        operational  0 ------ 10 ============ 40 ------ 50      window (10, 20, 3)
        real         0 ------ 10 ==== 20 ------------- 30
    """
    shift_s = 0.0  # operational minus real time, accumulated over the windows passed
    for start_s, end_s, factor in windows:
        operational_start_s = start_s + shift_s
        if operational_s <= operational_start_s:
            break
        operational_end_s = operational_start_s + (end_s - start_s) * factor
        if operational_s <= operational_end_s:
            return start_s + (operational_s - operational_start_s) / factor
        shift_s += (end_s - start_s) * (factor - 1.0)
    return operational_s - shift_s


def with_bursts(trace: Trace, windows: Sequence[BurstWindow], seed: int = 0) -> Trace:
    ordered = check_windows(windows)
    rng = random.Random(seed)
    copies: list[TraceRequest] = []
    for request in trace.requests:
        window = _window_of(ordered, request.arrival_s)
        if window is None:
            continue
        start_s, end_s, factor = window
        extra = factor - 1.0
        count = math.floor(extra) + (1 if rng.random() < extra - math.floor(extra) else 0)
        for _ in range(count):
            arrival_s = start_s + rng.random() * (end_s - start_s)
            copies.append(replace(request, arrival_s=arrival_s, session_id=None))
    merged = sorted((*trace.requests, *copies), key=lambda r: r.arrival_s)
    requests = tuple(replace(r, index=n) for n, r in enumerate(merged))
    tags = "+".join(f"burst{f:g}x@{s:g}-{e:g}s" for s, e, f in ordered)
    name = f"{trace.name}+{tags}" if tags else trace.name
    return Trace(name=name, source=trace.source, requests=requests)


def _window_of(windows: Sequence[BurstWindow], arrival_s: float) -> BurstWindow | None:
    for window in windows:
        if window[0] <= arrival_s < window[1]:
            return window
    return None
