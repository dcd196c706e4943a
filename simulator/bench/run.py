"""`bench`: one open-loop replay of a trace against a running router, start to finish.

The parts are public so `triskel bench` can show a progress bar between
choosing the model and replaying; `bench` runs them in one call.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from triskel.simulator.bench.grpc_target import GrpcTarget
from triskel.simulator.bench.http_target import HttpTarget
from triskel.simulator.bench.outcome import failure_reason, to_result
from triskel.simulator.bench.plan import BenchRequest, plan_requests
from triskel.simulator.bench.replay import OnDone, replay
from triskel.simulator.bench.target import (
    Target,
    TargetAddress,
    TargetError,
    Wire,
    parse_target_url,
)
from triskel.simulator.records import RunResult
from triskel.traces.types import Trace

DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class BenchRun:
    result: RunResult
    model: str
    # Why requests failed: reason → how many requests.
    failures: Counter[str]


def open_target(address: TargetAddress) -> Target:
    """A client for `address`; nothing is sent until it is used. Close it when done."""
    if address.wire is Wire.GRPC:
        return GrpcTarget(address.address)
    return HttpTarget(address.address)


async def choose_model(target: Target, requested: str | None, url: str) -> str:
    """`requested` if the router serves it, else the router's only model.

    TargetError when the router is unreachable, serves no such model, or serves
    several and none was named.
    """
    served = await target.list_models()
    if requested is not None:
        if requested not in served:
            raise TargetError(
                f"--model {requested}: {url} serves {', '.join(served) or 'no model'}"
            )
        return requested
    if len(served) != 1:
        listed = ", ".join(served) or "none"
        raise TargetError(f"{url} serves {len(served)} models ({listed}); pick one with --model")
    return served[0]


async def replay_trace(
    target: Target,
    model: str,
    requests: Sequence[BenchRequest],
    *,
    label: str,
    rate_scale: float,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_done: OnDone | None = None,
) -> BenchRun:
    """Replays `requests` (already planned at `rate_scale`) against `target`."""
    started = time.perf_counter()

    def clock() -> float:
        return time.perf_counter() - started

    outcomes = await replay(
        requests,
        lambda request: target.generate(request, model, clock),
        clock,
        timeout_s=timeout_s,
        on_done=on_done,
    )
    result = to_result(label, rate_scale, requests, outcomes, wall_s=clock())
    reasons = (failure_reason(r, o) for r, o in zip(requests, outcomes, strict=True))
    return BenchRun(result, model, Counter(reason for reason in reasons if reason is not None))


async def bench(
    trace: Trace,
    url: str,
    *,
    model: str | None = None,
    rate_scale: float = 1.0,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    salt: str = "",
) -> BenchRun:
    """Replays `trace` (arrivals divided by `rate_scale`) against the router at `url`.

    TargetError for a bad URL, an unreachable router or an unknown model;
    failed requests are recorded, never raised.
    """
    target = open_target(parse_target_url(url))
    try:
        chosen = await choose_model(target, model, url)
        requests = plan_requests(trace, rate_scale, salt)
        return await replay_trace(
            target, chosen, requests, label=url, rate_scale=rate_scale, timeout_s=timeout_s
        )
    finally:
        await target.close()
