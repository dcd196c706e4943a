"""`simulate`: one policy on one trace on one cluster shape, start to finish.

It wires the parts the way a live deployment is wired: one KV index holding every
instance's cache (as KV events delivered at once would keep it), the router's own
plugins built from the routing settings with the virtual clock and a seeded random
stream, and the mock engine's core in every instance. Everything random flows from
`seed`, and events at equal times run in push order, so a seed always replays the
same run.
"""

from __future__ import annotations

import random
import time

from triskel.common.routing_api import RoutingSettings
from triskel.router.scheduling.builtin import default_registry
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.simulator.cluster import ClusterShape, build_cluster, engine_config
from triskel.simulator.events import EventQueue
from triskel.simulator.fleet import Fleet
from triskel.simulator.goodput import Attainment
from triskel.simulator.metrics import SloTargets, meets_slo
from triskel.simulator.prompts import PromptCache
from triskel.simulator.records import InstanceRecord, RequestRecord, RunResult
from triskel.simulator.simulation import Controller, Simulation
from triskel.simulator.slo_judge import SloJudge
from triskel.simulator.transfer import TransferModel
from triskel.traces.types import Trace


def simulate(
    trace: Trace,
    shape: ClusterShape,
    routing: RoutingSettings,
    seed: int = 0,
    rate_scale: float = 1.0,
    *,
    policy: str = "custom",
    transfer: TransferModel | None = None,
    controller: Controller | None = None,
    prompts: PromptCache | None = None,
) -> RunResult:
    """Replays `trace` (arrivals divided by `rate_scale`) on a fresh cluster of `shape`.

    `policy` only labels the result; a `controller` scales the cluster as it runs (see
    `triskel.simulator.autoscale`), starting from `shape`. Runs of one trace on one
    shape may share `prompts` (`prompt_cache(shape)`), so each prompt is built once.
    Raises ValueError for a bad shape, rate or routing configuration (PluginConfigError
    names the plugin).
    """
    started = time.perf_counter()
    simulation = _simulation(
        trace.scaled(rate_scale), shape, routing, seed, transfer, controller, prompts
    )
    simulation.run()
    requests = [_require(record, n) for n, record in enumerate(simulation.records)]
    fleet = simulation.fleet
    instances = [
        InstanceRecord(
            worker_id=i.worker_id,
            role=str(i.role),
            busy_s=i.busy_s,
            start_s=fleet.lifetimes[i.worker_id].start_s,
            end_s=fleet.lifetimes[i.worker_id].end_s,
        )
        for i in fleet.instances
    ]
    return RunResult(
        policy=policy,
        rate_scale=rate_scale,
        requests=requests,
        instances=instances,
        duration_s=_duration_s(requests),
        wall_s=time.perf_counter() - started,
    )


def probe_attainment(
    trace: Trace,
    shape: ClusterShape,
    routing: RoutingSettings,
    slo: SloTargets,
    seed: int = 0,
    rate_scale: float = 1.0,
    *,
    prompts: PromptCache | None = None,
) -> Attainment:
    """The SLO attainment `simulate` would measure at `rate_scale`, or, once the run
    cannot reach `slo`'s target any more, the bound it stopped at (see `SloJudge`)."""
    judge = SloJudge(trace.num_requests, slo)
    simulation = _simulation(
        trace.scaled(rate_scale), shape, routing, seed, None, None, prompts, judge
    )
    simulation.run()
    if judge.is_out_of_reach:
        return Attainment(judge.max_attainment, is_upper_bound=True)
    records = [_require(record, n) for n, record in enumerate(simulation.records)]
    return Attainment(sum(1 for r in records if meets_slo(r, slo)) / len(records))


def _simulation(
    scaled: Trace,
    shape: ClusterShape,
    routing: RoutingSettings,
    seed: int,
    transfer: TransferModel | None,
    controller: Controller | None,
    prompts: PromptCache | None,
    judge: SloJudge | None = None,
) -> Simulation:
    cluster = build_cluster(shape)
    fleet = Fleet(cluster.instances, cluster.instances[0].core.config)
    kv_index = fleet.kv_index()
    events = EventQueue()
    if shape.load_report_interval_ms:
        fleet.report_load(shape.load_report_interval_ms / 1000, events)
    context = PluginContext(kv_index=kv_index, clock=events.clock, rng=random.Random(seed))
    scheduler = build_scheduler(routing.scheduling(), default_registry(), context)
    return Simulation(
        scaled,
        cluster,
        routing,
        scheduler,
        kv_index,
        events,
        transfer or TransferModel(),
        fleet,
        controller,
        prompts,
        judge,
    )


def prompt_cache(shape: ClusterShape) -> PromptCache:
    """A cache for `simulate` runs of one trace on `shape`'s engine (see `PromptCache`)."""
    config = engine_config(shape)
    return PromptCache(config.block_size_tokens, config.model, config.hash_salt)


def _require(record: RequestRecord | None, position: int) -> RequestRecord:
    if record is None:
        # Every request either finishes or fails once the queue is empty; None is a bug.
        raise AssertionError(f"request at position {position} never completed")
    return record


def _duration_s(requests: list[RequestRecord]) -> float:
    """From the first arrival to the last finish (0 when nothing finished)."""
    finishes = [r.finish_s for r in requests if r.finish_s is not None]
    if not finishes:
        return 0.0
    return max(finishes) - min(r.arrival_s for r in requests)
