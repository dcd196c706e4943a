"""`triskel up`'s autoscaler: every interval, per model, observe, decide and act.

    router /metrics ──two scrapes──► model_window: rate, mean lengths, TTFT / TPOT
    each pool ──► ready and starting workers; queued and running requests (worker stats)
        ──► Observation ──► autoscaler.step ──► a Decision per pool
        ──► one log line ──► pools.switch(donor, pool, n): drain, change role, rejoin
                         ──► pools.scale(pool, desired): start, or drain then stop

The policy and its state are the planner's (`triskel.planner.autoscalers`), exactly as
the operator and the simulator drive them; this module only reads and acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import aiohttp

from triskel.cli.autoscale_graphs import GraphPlan
from triskel.cli.local_worker import ReplicaCounts
from triskel.common.worker_load import WorkerLoad, worker_load
from triskel.planner.autoscalers import Autoscaler
from triskel.planner.planner import Decision, Observation, StageObservation
from triskel.planner.router_metrics import MetricsError, ModelWindow, Scrape, model_window
from triskel.planner.sizing import Lengths

_log = logging.getLogger(__name__)

Print = Callable[[str], None]
MetricsReader = Callable[[], Awaitable[str]]
LoadReader = Callable[[str], Awaitable[WorkerLoad | None]]
AutoscalerFactory = Callable[[GraphPlan, Lengths, Lengths], Autoscaler]

SCRAPE_TIMEOUT_S = 5.0
# Before any request was seen: a length is needed, its value does not matter (no load).
_NO_LENGTHS = Lengths(1.0, 1.0, 1.0)


class PoolControl(Protocol):
    """What the scaler needs of the pools (`LocalPools`)."""

    def counts(self, pool: str) -> ReplicaCounts: ...

    def endpoints(self, pool: str) -> list[str]:
        """gRPC addresses of the pool's serving workers."""
        ...

    def scale(self, pool: str, desired: int) -> None:
        """Starts or drains workers toward `desired`; returns at once."""
        ...

    def switch(self, donor: str, receiver: str, count: int) -> int:
        """Moves serving workers from `donor` to `receiver` (drain, change role, rejoin);
        returns at once with how many go."""
        ...


def built_autoscaler(plan: GraphPlan, inputs: Lengths, outputs: Lengths) -> Autoscaler:
    return plan.build(inputs, outputs)


def metrics_reader(url: str, timeout_s: float = SCRAPE_TIMEOUT_S) -> MetricsReader:
    """Reads the router's Prometheus text at `url`."""

    async def read() -> str:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url) as response,
        ):
            response.raise_for_status()
            return await response.text()

    return read


class GraphScaler:
    """Drives one model's autoscaler. `build` makes the policy (a test passes its own);
    the lengths-based laws are built at the first window with requests."""

    def __init__(
        self,
        plan: GraphPlan,
        pools: PoolControl,
        read_metrics: MetricsReader,
        say: Print,
        build: AutoscalerFactory = built_autoscaler,
        read_load: LoadReader = worker_load,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._plan = plan
        self._clock = clock
        self._pools = pools
        self._read_metrics = read_metrics
        self._say = say
        self._build = build
        self._read_load = read_load
        self._autoscaler: Autoscaler | None = None
        self._previous: Scrape | None = None
        self._lengths: tuple[Lengths, Lengths] | None = None
        self._last_kind: dict[str, str] = {}

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        """Ticks every `interval_s` until `stop` is set; a failed tick is logged and the
        next one tries again."""
        while not stop.is_set():
            try:
                await self.tick()
            except (aiohttp.ClientError, TimeoutError, MetricsError) as error:
                _log.warning("autoscale %s: no observation this interval: %s", self.model, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    @property
    def model(self) -> str:
        return self._plan.model

    async def tick(self) -> tuple[Decision, ...]:
        """Scrapes, and from the second scrape on decides and acts; the decisions made."""
        scrape = Scrape(self._clock(), await self._read_metrics())
        previous, self._previous = self._previous, scrape
        if previous is None:  # a window needs two scrapes
            return ()
        window = model_window(previous, scrape, self.model, self._plan.config.ttft_quantile)
        if window.rate_rps > 0:  # else the last lengths seen stand
            self._lengths = (window.inputs, window.outputs)
        autoscaler = self._autoscaler
        if autoscaler is None:
            if self._lengths is None and self._plan.needs_lengths:
                return ()
            inputs, outputs = self._lengths or (_NO_LENGTHS, _NO_LENGTHS)
            autoscaler = self._autoscaler = self._build(self._plan, inputs, outputs)
        decisions = autoscaler.step(await self._observe(scrape.time_s, window))
        for decision in decisions:
            self._report(decision)
        # Switches first: a worker on its way to a pool counts toward its size there,
        # so the scale that follows starts only what no switch covers.
        for decision in decisions:
            if decision.switched_in > 0 and decision.switched_from is not None:
                self._pools.switch(decision.switched_from, decision.stage, decision.switched_in)
        for decision in decisions:
            if decision.desired != decision.current:
                self._pools.scale(decision.stage, decision.desired)
        return decisions

    async def _observe(self, time_s: float, window: ModelWindow) -> Observation:
        stages = {}
        for spec in self._plan.stages:
            counts = self._pools.counts(spec.name)
            found = await asyncio.gather(*map(self._read_load, self._pools.endpoints(spec.name)))
            loads = [load for load in found if load is not None]
            stages[spec.name] = StageObservation(
                replicas=counts.provisioned,
                starting=counts.starting,
                ttft_ms=window.ttft_ms if spec.role != "decode" else None,
                tpot_ms=window.tpot_ms if spec.role != "prefill" else None,
                queued=float(sum(load.num_waiting_requests for load in loads)),
                running=float(sum(load.num_running_requests for load in loads)),
            )
        inputs, outputs = self._lengths or (_NO_LENGTHS, _NO_LENGTHS)
        return Observation(time_s, window.rate_rps, inputs, outputs, stages)

    def _report(self, decision: Decision) -> None:
        """Every change is said; a kept count only when its kind of reason changes
        (steady → hold), so an idle deployment does not fill the terminal."""
        line = describe(decision)
        kind = decision.reason.split(":", 1)[0]
        if decision.desired != decision.current or self._last_kind.get(decision.stage) != kind:
            self._say(line)
        else:
            _log.info("%s", line)
        self._last_kind[decision.stage] = kind


def describe(decision: Decision) -> str:
    """`autoscale decode: 4 -> 2 (scale down: ...) observed_rps=0.5 ...` on one line."""
    numbers = " ".join(f"{name}={_number(value)}" for name, value in decision.numbers.items())
    return (
        f"autoscale {decision.stage}: {decision.current} -> {decision.desired} "
        f"({decision.reason}) {numbers}"
    ).rstrip()


def _number(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(value) if math.isinf(value) or math.isnan(value) else f"{value:.3g}"


async def run_autoscale(
    plans: Sequence[GraphPlan],
    pools: PoolControl,
    read_metrics: MetricsReader,
    say: Print,
    stop: asyncio.Event,
) -> None:
    """Every model's scaler, each at its own interval, until `stop` is set."""
    scalers = []
    for plan in plans:
        interval_s = plan.interval_s or plan.build(_NO_LENGTHS, _NO_LENGTHS).interval_s
        stages = ", ".join(spec.name for spec in plan.stages)
        say(f"autoscale {plan.model}: {plan.policy} every {interval_s:g} s over {stages}")
        scaler = GraphScaler(plan, pools, read_metrics, say)
        scalers.append(scaler.run(stop, interval_s))
    await asyncio.gather(*scalers)
