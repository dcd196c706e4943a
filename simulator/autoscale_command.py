"""`triskel simulate --autoscale`: scaling policies side by side on one trace.

    trace (with optional bursts) ──► peak: the busiest minute's rate
      ├─► static pool sized for the peak (the planner's own sizing) ──► run
      └─► per policy: start sized for the first minute with the planner's headroom (or
          as given), scale every interval ──► run
    ──► table: SLO attainment, GPU-hours (and as a share of the static pool's), peak and
        mean replicas, scaling actions; [--json: decisions and timelines], [--plot DIR]

GPU-hours count every instance from its start (a starting replica is paid for) to
its end, until the last request finishes, times the profile's GPUs per replica.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from triskel.common.moe import initial_layout, plan_step
from triskel.common.profiles import load_profile
from triskel.common.routing_api import RoutingSettings, SloSpec
from triskel.planner.autoscalers import AUTOSCALERS, build_autoscaler
from triskel.planner.planner import PlannerConfig, StageSpec, stage_needs
from triskel.planner.sizing import Lengths
from triskel.simulator.actuators import Actuator, ElasticEp, EpGroups, EpStepRecord, Replicas
from triskel.simulator.autoscale import AutoscaleController, DecisionRecord, TimelinePoint
from triskel.simulator.cluster import ClusterShape
from triskel.simulator.metrics import SloTargets, summarize
from triskel.simulator.records import RequestRecord, RunResult
from triskel.simulator.run import simulate
from triskel.traces.types import Trace

STATIC = "static-peak"
STATIC_MIN = "static-min"
EP_MODES = ("whole-groups", "elastic-ep")
PEAK_WINDOW_S = 60.0
Echo = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class AutoscaleOptions:
    trace: Trace
    shape: ClusterShape  # the profile and P/D or unified; its counts are not used
    slo: SloTargets
    policies: Sequence[str]
    routing: RoutingSettings
    # The autoscaled runs' first replicas; None: sized for the first minute's rate.
    start: ClusterShape | None = None
    min_replicas: int = 1
    max_replicas: int = 32
    seed: int = 0
    jobs: int = 1
    json_path: Path | None = None
    plot_dir: Path | None = None
    # Also search the smallest static pool meeting the attainment target (many runs).
    search_static: bool = False
    # MoE pools: EP ranks per replica; > 1 compares, for every policy, whole-replica
    # scaling (EP groups from cold) with elastic EP steps (`actuators.py`).
    ep: int = 1
    # Where the trace's bursts are (START, END), for the burst columns: attainment of the
    # requests arriving inside any of them, and the longest time to absorb one.
    burst_windows: tuple[tuple[float, float], ...] = ()
    # Triskel's planner may move replicas between prefill and decode (seconds a switch
    # takes); None: it never does.
    role_switch_s: float | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in self.policies if name not in AUTOSCALERS]
        if unknown or not self.policies:
            raise ValueError(
                f"--autoscale: unknown policy {', '.join(map(repr, unknown)) or '(none)'}; "
                f"known: {', '.join(AUTOSCALERS)}"
            )
        if len(set(self.policies)) != len(self.policies):
            raise ValueError(f"--autoscale: a policy is named twice in {list(self.policies)}")
        if self.ep > 1 and load_profile(self.shape.profile).moe is None:
            raise ValueError(
                f"--ep: {self.ep} needs an MoE profile (with a `moe:` section); "
                f"{self.shape.profile} has none"
            )
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(
                f"--min-replicas ({self.min_replicas}) must be >= 1 and <= --max-replicas "
                f"({self.max_replicas})"
            )


@dataclass(frozen=True, slots=True)
class AutoscaleRow:
    policy: str
    attainment: float
    gpu_hours: float
    peak_replicas: dict[str, int]
    mean_replicas: dict[str, float]
    actions: int  # replicas started or drained
    ttft_p90_s: float | None
    tpot_p90_s: float | None
    burst_attainment: float | None = None  # of requests arriving inside the bursts
    # From a burst's start to its last missed window, the longest over the bursts.
    absorb_s: float | None = None


@dataclass(frozen=True, slots=True)
class PolicyRun:
    row: AutoscaleRow
    decisions: list[DecisionRecord]
    timeline: list[TimelinePoint]
    ep_steps: list[EpStepRecord] = field(default_factory=list)


def stage_specs(options: AutoscaleOptions) -> tuple[StageSpec, ...]:
    """A stage per role. With `--ep`, counts are EP ranks and the floor is at least one
    group, for whole groups and elastic EP alike: the operator's floor for an elastic
    pool (`ep × replicas.min` ranks), and what whole groups round up to anyway."""
    profile = load_profile(options.shape.profile)
    roles = ("prefill", "decode") if options.shape.is_disaggregated else ("unified",)
    low = max(options.min_replicas, options.ep)
    return tuple(
        StageSpec(role, role, profile, min(low, options.max_replicas), options.max_replicas)  # type: ignore[arg-type]
        for role in roles
    )


def planner_config(options: AutoscaleOptions) -> PlannerConfig:
    return PlannerConfig(
        ttft_slo_ms=options.slo.ttft_s * 1000,
        tpot_slo_ms=options.slo.tpot_s * 1000,
        role_switch_s=options.role_switch_s,
    )


def peak_rate_rps(trace: Trace) -> float:
    """The busiest `PEAK_WINDOW_S` of arrivals, as a rate."""
    counts: dict[int, int] = {}
    for request in trace.requests:
        slot = int(request.arrival_s // PEAK_WINDOW_S)
        counts[slot] = counts.get(slot, 0) + 1
    return max(counts.values(), default=0) / PEAK_WINDOW_S


def sized_shape(options: AutoscaleOptions, rate_rps: float) -> ClusterShape:
    """Replicas per stage the planner's own sizing gives for `rate_rps` at the whole
    trace's lengths, within the stage bounds."""
    config = planner_config(options)
    inputs, outputs = workload_lengths(options.trace)
    counts = {}
    for spec in stage_specs(options):
        count, _ = stage_needs(config, spec, inputs, outputs, rate_rps)
        counts[spec.role] = min(max(count, spec.min_replicas), spec.max_replicas)
    return options.shape.model_copy(
        update={
            "num_unified": counts.get("unified", 0),
            "num_prefill": counts.get("prefill", 0),
            "num_decode": counts.get("decode", 0),
        }
    )


def first_rate_rps(trace: Trace) -> float:
    """Arrivals in the first `PEAK_WINDOW_S`, as a rate: what the pools start sized for."""
    start = trace.requests[0].arrival_s if trace.requests else 0.0
    count = sum(1 for r in trace.requests if r.arrival_s < start + PEAK_WINDOW_S)
    return count / PEAK_WINDOW_S


def workload_lengths(trace: Trace) -> tuple[Lengths, Lengths]:
    return (
        Lengths.of([r.num_input_tokens for r in trace.requests]),
        Lengths.of([r.num_output_tokens for r in trace.requests]),
    )


def run_autoscale(options: AutoscaleOptions, echo: Echo) -> list[PolicyRun]:
    static = sized_shape(options, peak_rate_rps(options.trace))
    # As a planner that had been running would hold it: the first minute's load with the
    # planner's consolidation headroom.
    headroom = 1.0 + planner_config(options).headroom
    start = options.start or sized_shape(options, first_rate_rps(options.trace) * headroom)
    echo(
        f"trace {options.trace.name}: {options.trace.num_requests} requests over "
        f"{options.trace.duration_s:.0f} s, peak {peak_rate_rps(options.trace):.2f} req/s "
        f"(busiest {PEAK_WINDOW_S:.0f} s); static pool for the peak: {_shape_text(static)}; "
        f"autoscaled pools start at {_shape_text(start)}"
    )
    if options.ep > 1:  # whole EP groups, in the static pools too
        static, start = _in_groups(static, options.ep), _in_groups(start, options.ep)
        names = [STATIC, *(f"{p}/{mode}" for p in options.policies for mode in EP_MODES)]
    else:
        names = [STATIC, *options.policies]
    if options.jobs == 1:
        runs = [_run_one(name, options, static, start) for name in names]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(options.jobs, mp_context=context) as pool:
            futures = [pool.submit(_run_one, name, options, static, start) for name in names]
            runs = [future.result() for future in futures]
    if options.search_static and runs[0].row.attainment >= options.slo.attainment_target:
        smallest, run = smallest_static(options, static, runs[0], echo)
        echo(
            f"smallest static pool meeting {options.slo.attainment_target:.0%}: "
            f"{_shape_text(smallest)}"
        )
        runs.insert(1, run)
    echo("")
    echo(_table([run.row for run in runs]))
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(_document(options, static, runs), indent=1) + "\n")
        echo(f"wrote {options.json_path}")
    if options.plot_dir is not None:
        from triskel.simulator import plots  # matplotlib only when asked for

        options.plot_dir.mkdir(parents=True, exist_ok=True)
        path = plots.plot_autoscale(
            {run.row.policy: run.timeline for run in runs if run.timeline},
            options.plot_dir / "autoscale.png",
        )
        echo(f"wrote {path}")
    return runs


def smallest_static(
    options: AutoscaleOptions, peak: ClusterShape, peak_run: PolicyRun, echo: Echo
) -> tuple[ClusterShape, PolicyRun]:
    """The fewest replicas per stage whose static pool still meets the attainment
    target: a binary search on each stage in turn (decode, then prefill, or the unified
    pool), from the pool sized for the peak, which meets it. Attainment is taken to
    grow with replicas (it does, up to the simulator's noise)."""
    best, best_run = peak, peak_run
    fields = ("num_decode", "num_prefill") if peak.is_disaggregated else ("num_unified",)
    for field_name in fields:
        low, high = 1, getattr(best, field_name)  # high meets the target
        while low < high:
            middle = (low + high) // 2
            shape = best.model_copy(update={field_name: middle})
            run = _run_one(STATIC_MIN, options, shape, shape)
            echo(f"  static {_shape_text(shape)}: {run.row.attainment:.1%}")
            if run.row.attainment >= options.slo.attainment_target:
                high, best_run = middle, run
            else:
                low = middle + 1
        best = best.model_copy(update={field_name: high})
    if best_run.row.policy != STATIC_MIN:  # the peak pool itself was the smallest
        best_run = _run_one(STATIC_MIN, options, best, best)
    return best, best_run


def _run_one(
    name: str, options: AutoscaleOptions, static: ClusterShape, start: ClusterShape
) -> PolicyRun:
    spec = SloSpec(ttft_ms=options.slo.ttft_s * 1000, tpot_ms=options.slo.tpot_s * 1000)
    routing = options.routing.model_copy(update={"slo": spec})
    stages = stage_specs(options)
    controller = None
    shape = static
    elastic: ElasticEp | None = None
    if name not in (STATIC, STATIC_MIN):
        policy, _, mode = name.partition("/")
        actuator: Actuator = Replicas()
        if mode == "whole-groups":
            actuator = EpGroups(options.ep)
        elif mode == "elastic-ep":
            elastic, stages = _elastic(options, stages)
            actuator = elastic
        inputs, outputs = workload_lengths(options.trace)
        autoscaler = build_autoscaler(policy, planner_config(options), stages, inputs, outputs)
        controller = AutoscaleController(
            autoscaler,
            stages,
            options.slo.ttft_s,
            options.slo.tpot_s,
            actuator=actuator,
            role_switch_s=options.role_switch_s or 0.0,
        )
        shape = start
    result = simulate(
        options.trace, shape, routing, options.seed, policy=name, controller=controller
    )
    timeline = [] if controller is None else controller.timeline
    decisions = [] if controller is None else controller.decisions
    steps = [] if elastic is None else elastic.steps
    return PolicyRun(_row(name, result, options, timeline), decisions, timeline, steps)


def _elastic(
    options: AutoscaleOptions, stages: tuple[StageSpec, ...]
) -> tuple[ElasticEp, tuple[StageSpec, ...]]:
    """The elastic actuator, and stages whose start-up time is one EP step's (what the
    planner's horizon and scale-down window should weigh)."""
    profile = load_profile(options.shape.profile)
    assert profile.moe is not None  # checked by AutoscaleOptions
    step = plan_step(
        profile.moe, initial_layout(profile.moe.num_experts, options.ep), options.ep + 1
    )
    quick = profile.model_copy(update={"startup_s": step.seconds})
    low = min(spec.min_replicas for spec in stages)
    elastic = ElasticEp(profile.moe, low, options.max_replicas)
    return elastic, tuple(replace(spec, profile=quick) for spec in stages)


def _in_groups(shape: ClusterShape, ep: int) -> ClusterShape:
    def up(count: int) -> int:
        return -(-count // ep) * ep

    return shape.model_copy(
        update={
            "num_unified": up(shape.num_unified),
            "num_prefill": up(shape.num_prefill),
            "num_decode": up(shape.num_decode),
        }
    )


def _row(
    name: str, result: RunResult, options: AutoscaleOptions, timeline: list[TimelinePoint]
) -> AutoscaleRow:
    metrics = summarize(result, options.slo)
    num_gpus = load_profile(options.shape.profile).num_gpus
    until_s = max((r.finish_s for r in result.requests if r.finish_s is not None), default=0.0)
    gpu_hours = sum(i.gpu_seconds(until_s, num_gpus) for i in result.instances) / 3600.0
    roles = sorted({i.role for i in result.instances})
    if timeline:
        peak = {role: max(p.replicas.get(role, 0) for p in timeline) for role in roles}
        mean = {
            role: sum(p.replicas.get(role, 0) for p in timeline) / len(timeline) for role in roles
        }
    else:
        peak = {role: sum(1 for i in result.instances if i.role == role) for role in roles}
        mean = {role: float(count) for role, count in peak.items()}
    started = sum(1 for i in result.instances if i.start_s > 0.0)
    drained = sum(1 for i in result.instances if i.end_s is not None)
    burst_attainment = absorb_s = None
    if options.burst_windows:
        windows = options.burst_windows
        inside = [r for r in result.requests if any(s <= r.arrival_s < e for s, e in windows)]
        burst_attainment = sum(1 for r in inside if _met(r, options.slo)) / max(1, len(inside))
        absorb_s = max(
            _absorb_s(timeline, start_s, end_s, options.slo) for start_s, end_s in windows
        )
    return AutoscaleRow(
        policy=name,
        attainment=metrics.slo_attainment,
        gpu_hours=gpu_hours,
        peak_replicas=peak,
        mean_replicas=mean,
        actions=started + drained,
        ttft_p90_s=None if metrics.ttft is None else metrics.ttft.p90_s,
        tpot_p90_s=None if metrics.tpot is None else metrics.tpot.p90_s,
        burst_attainment=burst_attainment,
        absorb_s=absorb_s if timeline else None,
    )


def _absorb_s(
    timeline: list[TimelinePoint], start_s: float, end_s: float, slo: SloTargets
) -> float:
    """From the burst's start to its last window below the attainment target (0: none)."""
    missed = [
        p.time_s
        for p in timeline
        if start_s <= p.time_s <= end_s
        and p.attainment is not None
        and p.attainment < slo.attainment_target
    ]
    return max(missed) - start_s if missed else 0.0


def _met(record: RequestRecord, slo: SloTargets) -> bool:
    ttft, tpot = record.ttft_s, record.tpot_s
    return ttft is not None and tpot is not None and ttft <= slo.ttft_s and tpot <= slo.tpot_s


def _table(rows: list[AutoscaleRow]) -> str:
    peak_hours = next((r.gpu_hours for r in rows if r.policy == STATIC), None)
    min_hours = next((r.gpu_hours for r in rows if r.policy == STATIC_MIN), None)
    burst = any(r.burst_attainment is not None for r in rows)
    lines = [
        "| policy | SLO attainment | GPU-hours | vs static-peak | vs static-min "
        "| peak replicas | mean replicas | actions | TTFT p90 | TPOT p90 |"
        + (" attainment in the bursts | burst absorbed after |" if burst else ""),
        "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |"
        + (" ---: | ---: |" if burst else ""),
    ]
    for row in rows:
        versus_peak = "" if not peak_hours else f"{row.gpu_hours / peak_hours:.0%}"
        versus_min = "" if not min_hours else f"{row.gpu_hours / min_hours:.0%}"
        peak = " / ".join(f"{k[0].upper()} {v}" for k, v in row.peak_replicas.items())
        mean = " / ".join(f"{k[0].upper()} {v:.1f}" for k, v in row.mean_replicas.items())
        ttft = "" if row.ttft_p90_s is None else f"{row.ttft_p90_s:.2f} s"
        tpot = "" if row.tpot_p90_s is None else f"{row.tpot_p90_s * 1000:.0f} ms"
        line = (
            f"| {row.policy} | {row.attainment:.1%} | {row.gpu_hours:.2f} | {versus_peak} "
            f"| {versus_min} | {peak} | {mean} | {row.actions} | {ttft} | {tpot} |"
        )
        if burst:
            inside = "" if row.burst_attainment is None else f"{row.burst_attainment:.1%}"
            absorb = "" if row.absorb_s is None else f"{row.absorb_s:.0f} s"
            line += f" {inside} | {absorb} |"
        lines.append(line)
    return "\n".join(lines)


def _shape_text(shape: ClusterShape) -> str:
    if shape.is_disaggregated:
        return f"{shape.num_prefill} prefill + {shape.num_decode} decode"
    return f"{shape.num_unified} unified"


def _document(
    options: AutoscaleOptions, static: ClusterShape, runs: list[PolicyRun]
) -> dict[str, Any]:
    return {
        "trace": options.trace.name,
        "profile": options.shape.profile,
        "slo": {"ttftS": options.slo.ttft_s, "tpotS": options.slo.tpot_s},
        "peakRateRps": peak_rate_rps(options.trace),
        "staticShape": _shape_text(static),
        "policies": [
            {
                **asdict(run.row),
                "decisions": [asdict(d) for d in run.decisions],
                "epSteps": [asdict(step) for step in run.ep_steps],
                "timeline": [asdict(p) for p in run.timeline],
            }
            for run in runs
        ],
    }
