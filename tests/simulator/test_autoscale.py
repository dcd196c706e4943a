"""Autoscaling inside a simulated run: decisions reach the fleet, drains lose nothing,
GPU-hours count starting replicas, and `triskel simulate --autoscale` reports it all."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triskel.cli.main import app
from triskel.common.profiles import load_profile
from triskel.common.routing_api import RoutingSettings
from triskel.planner.planner import Decision, Observation, StageSpec
from triskel.simulator.autoscale import AutoscaleController
from triskel.simulator.autoscale_command import STATIC, AutoscaleOptions, run_autoscale, stage_specs
from triskel.simulator.cluster import ClusterShape
from triskel.simulator.metrics import SloTargets, summarize
from triskel.simulator.run import simulate
from triskel.traces import SyntheticSpec, synthetic_trace
from triskel.traces.types import Trace

PROFILE = load_profile("llama-3.1-8b-h100")  # starts in 60 s
STAGES = (
    StageSpec("prefill", "prefill", PROFILE, 1, 8),
    StageSpec("decode", "decode", PROFILE, 1, 8),
)
SLO = SloTargets(2.0, 0.1, 0.9)


def trace(rate_per_s: float = 4.0, duration_s: float = 200.0) -> Trace:
    spec = SyntheticSpec(
        rate_per_s=rate_per_s,
        duration_s=duration_s,
        input_tokens_mean=512,
        output_tokens_mean=32,
    )
    return synthetic_trace(spec, seed=2)


@dataclass
class Scripted:
    """Answers each interval with the decode count scripted for that time."""

    plan: dict[float, int]
    interval_s: float = 15.0
    name: str = "scripted"
    seen: list[Observation] = field(default_factory=list)

    def step(self, observation: Observation) -> tuple[Decision, ...]:
        self.seen.append(observation)
        decisions = []
        for spec in STAGES:
            current = observation.stages[spec.name].replicas
            desired = (
                self.plan.get(observation.time_s, current) if spec.role == "decode" else current
            )
            decisions.append(Decision(spec.name, current, desired, "scripted", {}))
        return tuple(decisions)


def test_decisions_start_and_drain_instances_without_losing_a_request() -> None:
    # Decode goes 1 → 3 at t=15 (ready at 75), then 3 → 1 at t=120: the two drained
    # instances finish what they hold and go; every request finishes.
    scripted = Scripted({15.0: 3, 120.0: 1})
    controller = AutoscaleController(scripted, STAGES, SLO.ttft_s, SLO.tpot_s)
    shape = ClusterShape(num_prefill=1, num_decode=1)
    result = simulate(trace(), shape, RoutingSettings(), controller=controller)
    assert summarize(result, SLO).num_failed == 0
    decode = sorted((i for i in result.instances if i.role == "decode"), key=lambda i: i.worker_id)
    assert [i.start_s for i in decode] == [0.0, 15.0, 15.0]
    assert sum(1 for i in decode if i.end_s is not None) == 2
    assert all(i.end_s is None or i.end_s >= 120.0 for i in decode)
    # The observation the law gets: replicas provisioned, and those still starting.
    at_30 = next(o for o in scripted.seen if o.time_s == 30.0)
    assert at_30.stages["decode"].replicas == 3
    assert at_30.stages["decode"].starting == 2
    at_90 = next(o for o in scripted.seen if o.time_s == 90.0)
    assert at_90.stages["decode"].starting == 0
    # Added instances served once ready: some requests went to them.
    added = {i.worker_id for i in decode if i.start_s > 0}
    assert any(r.decode_worker in added for r in result.requests)
    assert all(r.arrival_s >= 75.0 for r in result.requests if r.decode_worker in added)
    # GPU time counts a started replica from its start, a drained one to its end.
    until = max(r.finish_s for r in result.requests if r.finish_s is not None)
    paid = sum(i.gpu_seconds(until, 1) for i in decode)
    assert until < paid < 3 * until


def test_triskels_planner_grows_the_pools_under_a_load_step() -> None:
    # On L4s (a 512-token prompt takes ~270 ms): 0.5 req/s for 100 s, one replica per
    # stage is plenty; then 6 req/s for 100 s, more than one prefill replica can take.
    quiet, busy = trace(0.5, 100.0), trace(6.0, 100.0)
    requests = [
        *quiet.requests,
        *(replace(r, arrival_s=r.arrival_s + 100.0) for r in busy.requests),
    ]
    stepped = Trace("step", "test", tuple(replace(r, index=n) for n, r in enumerate(requests)))
    options = AutoscaleOptions(
        trace=stepped,
        shape=ClusterShape(num_prefill=1, num_decode=1, profile="llama-3.1-8b-l4"),
        slo=SLO,
        policies=["triskel"],
        routing=RoutingSettings(),
        max_replicas=8,
    )
    static, triskel = run_autoscale(options, lambda _: None)
    assert static.row.policy == STATIC
    grown = [d for d in triskel.decisions if d.desired > d.current]
    assert grown and all(d.time_s >= 100.0 for d in grown)
    assert max(p.replicas["prefill"] for p in triskel.timeline) > 1
    # Every decision names the load it sized for and how far ahead it looked.
    assert all(d.numbers["horizon_s"] == 60.0 for d in triskel.decisions)


def test_the_command_writes_the_table_decisions_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "as.json"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--trace",
            str(Path(__file__).resolve().parents[1] / "data" / "traces" / "azure_conv_head200.csv"),
            "--autoscale",
            "triskel,hpa-queue",
            "--burst",
            "10,20,2",
            "--json",
            str(out),
            "--plot",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| static-peak |" in result.output and "| triskel |" in result.output
    assert "| hpa-queue |" in result.output
    document = json.loads(out.read_text())
    names = [p["policy"] for p in document["policies"]]
    assert names == ["static-peak", "triskel", "hpa-queue"]
    triskel = document["policies"][1]
    assert triskel["decisions"] and {"time_s", "stage", "current", "desired", "reason"} <= set(
        triskel["decisions"][0]
    )
    assert triskel["timeline"]
    assert (tmp_path / "autoscale.png").stat().st_size > 0


def test_bad_autoscale_options_are_refused_naming_them() -> None:
    sample = str(Path(__file__).resolve().parents[1] / "data" / "traces" / "azure_conv_head200.csv")
    cases = [
        (["--autoscale", "keda"], "--autoscale: unknown policy 'keda'"),
        (["--autoscale", "triskel", "--burst", "10:20:2"], "--burst: expected START,END,FACTOR"),
        (["--autoscale", "triskel", "--burst", "20,10,2"], "burst: need 0 <= start"),
        (["--burst", "10,20,2"], "--burst: only with --autoscale"),
        (["--autoscale", "dynamo", "--unified", "2"], "one prefill and one decode"),
    ]
    for extra, message in cases:
        result = CliRunner().invoke(app, ["simulate", "--trace", sample, *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, (extra, result.output)
        assert "Traceback" not in result.output


@dataclass
class Switching:
    """At t=15, one decode replica moves to prefill (a role switch)."""

    interval_s: float = 15.0
    name: str = "switching"

    def step(self, observation: Observation) -> tuple[Decision, ...]:
        prefill = observation.stages["prefill"].replicas
        decode = observation.stages["decode"].replicas
        if observation.time_s != 15.0:
            return (
                Decision("prefill", prefill, prefill, "hold", {}),
                Decision("decode", decode, decode, "hold", {}),
            )
        return (
            Decision(
                "prefill", prefill, prefill + 1, "switch", {}, switched_in=1, switched_from="decode"
            ),
            Decision("decode", decode, decode - 1, "switch", {}, switched_out=1),
        )


def test_a_role_switch_drains_a_replica_and_rejoins_it_in_the_other_role() -> None:
    controller = AutoscaleController(Switching(), STAGES, SLO.ttft_s, SLO.tpot_s, role_switch_s=5.0)
    shape = ClusterShape(num_prefill=1, num_decode=2)
    result = simulate(trace(2.0, 100.0), shape, RoutingSettings(), controller=controller)
    assert summarize(result, SLO).num_failed == 0
    (left,) = [i for i in result.instances if i.role == "decode" and i.end_s is not None]
    (joined,) = [i for i in result.instances if i.role == "prefill" and i.start_s > 0]
    # The GPU changes role without a gap and without a cold start: it rejoins where the
    # decode replica ended, and serves 5 s later (not the profile's 60 s).
    assert joined.start_s == left.end_s
    served = [r.arrival_s for r in result.requests if r.prefill_worker == joined.worker_id]
    assert served and min(served) >= joined.start_s + 5.0
    assert min(served) < joined.start_s + 60.0
    assert sum(1 for i in result.instances if i.start_s > 0) == 1  # nothing started cold


def test_with_ep_the_floor_is_one_group_for_whole_groups_and_elastic_ep_alike() -> None:
    # The operator floors an elastic pool at ep x replicas.min ranks; whole groups round
    # any count up to a group. An elastic run left at 1 rank would idle below a group and
    # catch a burst up one step at a time: not the comparison a user would make.
    def floor(ep: int, min_replicas: int = 1) -> int:
        options = AutoscaleOptions(
            trace=trace(duration_s=10.0),
            shape=ClusterShape(num_unified=4, profile="deepseek-v2-lite-ep-h100"),
            slo=SLO,
            policies=["triskel"],
            routing=RoutingSettings(),
            min_replicas=min_replicas,
            ep=ep,
        )
        (stage,) = stage_specs(options)
        return stage.min_replicas

    assert floor(ep=1) == 1
    assert floor(ep=4) == 4
    assert floor(ep=4, min_replicas=12) == 12  # a higher floor in ranks stands


def test_the_load_report_interval_reaches_every_autoscaled_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[AutoscaleOptions] = []

    def run(options: AutoscaleOptions, echo: object) -> list[object]:
        seen.append(options)
        return []

    monkeypatch.setattr("triskel.simulator.autoscale_command.run_autoscale", run)
    sample = str(Path(__file__).resolve().parents[1] / "data" / "traces" / "azure_conv_head200.csv")
    for extra, expected in (([], 50.0), (["--load-report-ms", "0"], 0.0)):
        result = CliRunner().invoke(
            app, ["simulate", "--trace", sample, "--autoscale", "triskel", *extra]
        )
        assert result.exit_code == 0, result.output
        # Sized runs copy the shape (`sized_shape`), so every run reports as it says.
        assert seen.pop().shape.load_report_interval_ms == expected
