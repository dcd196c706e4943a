"""The up file's `autoscale:` section: what the planner is handed, and what is refused."""

from __future__ import annotations

import pytest

from triskel.cli.autoscale_graphs import graph_plans, profile_as_run
from triskel.cli.up_config import UpConfigError, parse_up_config
from triskel.common.api import ProfileSpec
from triskel.common.profiles import load_profile

PD = """
autoscale: {intervalS: 2, ttftMs: 800, tpotMs: 40, scaleDownWindowS: 5, scaleDownCooldownS: 3}
pools:
  - {name: encode, role: encode, model: m}
  - name: prefill
    role: prefill
    model: m
    replicas: {min: 1, max: 3}
    profile: {name: llama-3.1-8b-h100, timeScale: 0.5, kvCapacityTokens: 8192}
  - {name: decode, role: decode, model: m, replicas: {min: 2, max: 6}}
  - {name: other, role: unified, model: n}
"""


def test_a_graph_per_model_with_a_stage_per_scalable_pool() -> None:
    config = parse_up_config(PD, "up.yaml")
    assert config.autoscale is not None
    plans = graph_plans(config.autoscale, config.pools)
    assert [plan.model for plan in plans] == ["m", "n"]
    first = plans[0]
    # The encode pool is not the planner's: only prefill and decode are staged.
    assert [(s.name, s.role, s.min_replicas, s.max_replicas) for s in first.stages] == [
        ("prefill", "prefill", 1, 3),
        ("decode", "decode", 2, 6),
    ]
    assert first.policy == "triskel" and first.interval_s == 2
    assert (first.config.ttft_slo_ms, first.config.tpot_slo_ms) == (800, 40)
    assert (first.config.scale_down_window_s, first.config.scale_down_cooldown_s) == (5, 3)
    # The planner's horizon is counted in decision intervals: it gets the file's.
    assert first.config.interval_s == 2
    assert first.config.role_switch_s is None  # no switching unless asked for


def test_role_switching_reaches_the_planner() -> None:
    config = parse_up_config(PD.replace("autoscale: {", "autoscale: {roleSwitchS: 3, "), "up.yaml")
    assert config.autoscale is not None
    assert graph_plans(config.autoscale, config.pools)[0].config.role_switch_s == 3


def test_without_an_interval_the_policy_keeps_its_own() -> None:
    config = parse_up_config(PD.replace("intervalS: 2, ", ""), "up.yaml")
    assert config.autoscale is not None
    plan = graph_plans(config.autoscale, config.pools)[0]
    assert plan.interval_s is None
    # The planner's default: the HPA controller's 15 s sync period.
    assert plan.config.interval_s == 15.0


def test_the_profile_is_sized_as_the_mock_runs_it() -> None:
    base = load_profile("llama-3.1-8b-h100")
    spec = ProfileSpec(name=base.name, time_scale=0.5, kv_capacity_tokens=8192)
    run = profile_as_run(base, spec)
    # Every step takes half as long on this pool's mock; its KV cache holds 8,192 tokens.
    assert run.prefill.a_ms == base.prefill.a_ms / 2
    assert run.prefill.b_ms_per_token == base.prefill.b_ms_per_token / 2
    assert run.decode.c_ms_per_seq == base.decode.c_ms_per_seq / 2
    assert run.kv_capacity_tokens == 8192
    # Unchanged: what the mock does not scale.
    assert (run.startup_s, run.max_num_seqs) == (base.startup_s, base.max_num_seqs)
    assert profile_as_run(base, ProfileSpec(name=base.name)) == base


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # A policy name that does not exist lists the ones that do.
        (("autoscale: {", "autoscale: {policy: keda, "), ["autoscale.policy", "'triskel'"]),
        # No decision interval of zero.
        (("intervalS: 2", "intervalS: 0"), ["autoscale.intervalS", "greater than 0"]),
        (("ttftMs: 800", "ttftMs: -1"), ["autoscale.ttftMs", "greater than 0"]),
        (
            ("scaleDownWindowS: 5", "scaleDownWindowS: -5"),
            ["autoscale.scaleDownWindowS", "greater than or equal to 0"],
        ),
        # A typo is an error, not a silently ignored setting.
        (("intervalS: 2", "intervalSeconds: 2"), ["autoscale.intervalSeconds", "not permitted"]),
        # Dynamo's law sizes exactly one prefill and one decode pool; model n is unified.
        (
            ("autoscale: {", "autoscale: {policy: dynamo, "),
            ["autoscale.policy: model n: dynamo's throughput planner", "this graph has unified"],
        ),
        # Only Triskel's planner switches roles: elsewhere the setting would do nothing.
        (
            ("autoscale: {", "autoscale: {policy: llm-d, roleSwitchS: 3, "),
            ["autoscale", "roleSwitchS: only the triskel policy switches roles, not llm-d"],
        ),
        (("autoscale: {", "autoscale: {roleSwitchS: -1, "), ["autoscale.roleSwitchS"]),
        # Instant workers have no latency to size for.
        (
            ("timeScale: 0.5", "timeScale: 0"),
            ["pools[1](prefill).profile.timeScale: 0 (instant) workers"],
        ),
        (
            ("name: llama-3.1-8b-h100", "name: llama-9-tpu"),
            ["pools[1](prefill).profile.name", "unknown profile 'llama-9-tpu'"],
        ),
    ],
)
def test_a_bad_autoscale_section_is_refused_naming_the_field(
    change: tuple[str, str], expected: list[str]
) -> None:
    old, new = change
    assert old in PD
    with pytest.raises(UpConfigError) as caught:
        parse_up_config(PD.replace(old, new, 1), "up.yaml")
    message = str(caught.value)
    assert message.startswith("up.yaml: invalid configuration")
    for fragment in expected:
        assert fragment in message, message


def test_without_the_section_nothing_is_scaled() -> None:
    config = parse_up_config("pools:" + PD.split("pools:", 1)[1], "up.yaml")
    assert config.autoscale is None


def test_every_policy_can_run_a_prefill_decode_graph() -> None:
    for policy in ("triskel", "hpa-queue", "aibrix-kpa", "dynamo", "llm-d"):
        text = PD.replace("autoscale: {", f"autoscale: {{policy: {policy}, ").replace(
            "  - {name: other, role: unified, model: n}\n", ""
        )
        config = parse_up_config(text, "up.yaml")
        assert config.autoscale is not None
        assert [p.policy for p in graph_plans(config.autoscale, config.pools)] == [policy]
