"""A burst laid over a trace: more of its own requests inside a window.

Inside [start_s, end_s) every request is copied `factor − 1` times on average (the
fraction by a seeded coin), each copy at a uniformly random time of the window, so
the window carries `factor` times its own traffic with its own length mix. Outside
it, nothing changes. The result is re-indexed in arrival order. Used to replay a
real trace with a peak an autoscaler must absorb (docs/benchmarks.md).
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from triskel.traces.types import Trace, TraceRequest


def with_burst(trace: Trace, start_s: float, end_s: float, factor: float, seed: int = 0) -> Trace:
    if not 0.0 <= start_s < end_s:
        raise ValueError(f"burst: need 0 <= start ({start_s}) < end ({end_s})")
    if not factor >= 1.0:
        raise ValueError(f"burst: factor must be >= 1, got {factor}")
    rng = random.Random(seed)
    window_s = end_s - start_s
    extra = factor - 1.0
    copies: list[TraceRequest] = []
    for request in trace.requests:
        if not start_s <= request.arrival_s < end_s:
            continue
        count = math.floor(extra) + (1 if rng.random() < extra - math.floor(extra) else 0)
        for _ in range(count):
            arrival_s = start_s + rng.random() * window_s
            copies.append(replace(request, arrival_s=arrival_s, session_id=None))
    merged = sorted((*trace.requests, *copies), key=lambda r: r.arrival_s)
    requests = tuple(replace(r, index=n) for n, r in enumerate(merged))
    name = f"{trace.name}+burst{factor:g}x@{start_s:g}-{end_s:g}s"
    return Trace(name=name, source=trace.source, requests=requests)
