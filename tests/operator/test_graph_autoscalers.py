"""A graph's autoscaler lives as long as its settings; lengths-targeted laws wait for requests."""

from __future__ import annotations

import dataclasses

import pytest

from triskel.common.profiles import load_profile
from triskel.operator.autoscaling import AutoscalingProblem
from triskel.operator.graph_autoscalers import (
    DEFAULT_INTERVAL_S,
    AutoscalingSettings,
    GraphAutoscalers,
)
from triskel.planner.planner import PlannerConfig, StageSpec
from triskel.planner.router_metrics import ModelWindow
from triskel.planner.sizing import Lengths

PROFILE = load_profile("llama-3.1-8b-h100")
UNIFIED = (StageSpec("u", "unified", PROFILE, 1, 4),)
PD = (StageSpec("p", "prefill", PROFILE, 1, 4), StageSpec("d", "decode", PROFILE, 1, 4))


def settings(policy: str, stages: tuple[StageSpec, ...] = UNIFIED) -> AutoscalingSettings:
    return AutoscalingSettings("ns/chat", policy, PlannerConfig(2000, 100), stages, None)


def window(rate_rps: float) -> ModelWindow:
    lengths = Lengths(1000, 1e6, 1000) if rate_rps else Lengths(0, 0, 0)
    return ModelWindow(rate_rps, lengths, lengths, None, None)


def test_the_same_settings_keep_the_autoscaler_and_changed_ones_build_anew() -> None:
    state = GraphAutoscalers().of(("ns", "chat"))
    state.configure(settings("triskel"))
    first = state.autoscaler
    assert first is not None
    state.configure(settings("triskel"))
    assert state.autoscaler is first  # its rate history and cooldowns survive
    wider = (dataclasses.replace(UNIFIED[0], max_replicas=8),)
    state.configure(settings("triskel", wider))
    assert state.autoscaler is not first


def test_the_interval_is_the_specs_else_the_policys() -> None:
    state = GraphAutoscalers().of(("ns", "chat"))
    state.configure(settings("dynamo", PD))
    assert state.interval_s == 180.0  # Dynamo's adjustment interval
    state.configure(dataclasses.replace(settings("dynamo", PD), interval_s=30.0))
    assert state.interval_s == 30.0


def test_a_law_targeted_from_lengths_is_built_at_the_first_window_with_requests() -> None:
    state = GraphAutoscalers().of(("ns", "chat"))
    state.configure(settings("hpa-queue"))
    # Its per-replica queue target comes from the mean lengths: none seen yet.
    assert state.autoscaler_for(window(0.0)) is None
    assert state.interval_s == DEFAULT_INTERVAL_S
    built = state.autoscaler_for(window(2.0))
    assert built is not None and built.name == "hpa-queue"
    assert state.autoscaler_for(window(0.0)) is built


def test_a_policy_that_cannot_run_the_graph_is_a_problem_each_time() -> None:
    state = GraphAutoscalers().of(("ns", "chat"))
    for _ in range(2):  # not remembered as configured: asked again, refused again
        with pytest.raises(AutoscalingProblem) as raised:
            state.configure(settings("dynamo"))
        assert raised.value.reason == "PolicyCannotRun"
        assert raised.value.message.startswith(
            "ServingGraph ns/chat: spec.autoscaling.policy (dynamo): "
        )
        assert "one prefill and one decode pool" in raised.value.message


def test_dropping_a_graph_forgets_it() -> None:
    graphs = GraphAutoscalers()
    graphs.of(("ns", "chat")).pools = frozenset({"u"})
    dropped = graphs.drop(("ns", "chat"))
    assert dropped is not None and dropped.pools == {"u"}
    assert graphs.drop(("ns", "chat")) is None
    assert graphs.of(("ns", "chat")).pools == frozenset()
