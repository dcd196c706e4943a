"""A RoutingPolicy is judged with the router's own plugin registry and semantic loader."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.common.resources import ServingGraphSpec
from triskel.operator.builders.router_config import Named
from triskel.operator.policy_check import PolicyJudge, targets_in

GOOD = {
    "plugins": [{"type": "least-load-scorer"}, {"type": "max-score-picker"}],
    "profiles": [
        {
            "name": "decode",
            "plugins": [{"pluginRef": "least-load-scorer"}, {"pluginRef": "max-score-picker"}],
        }
    ],
}


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (GOOD, None),
        ({}, None),  # no profiles: round-robin everywhere
        # A parameter only the plugin can judge: named with plugin and field.
        (
            {
                **GOOD,
                "plugins": [
                    {"type": "dualmap", "parameters": {"vnodesPerWorker": 0}},
                    {"type": "max-score-picker"},
                ],
                "profiles": [{"name": "prefill", "plugins": [{"pluginRef": "dualmap"}]}],
            },
            "vnodesPerWorker",
        ),
        ({**GOOD, "plugins": [{"type": "no-such-plugin"}]}, "no-such-plugin"),
        ({"maxAttempts": 0}, "spec.maxAttempts"),
    ],
)
def test_problems_name_the_plugin_or_field(spec: dict[str, Any], fragment: str | None) -> None:
    problem = PolicyJudge().problem({"spec": spec})
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem


SEMANTIC = {
    "semantic": {
        "signals": [
            {"type": "keywords", "name": "math_words", "parameters": {"any": ["integral"]}}
        ],
        "decisions": [{"name": "math", "rules": {"signal": "math_words"}, "model": "large"}],
        "default": {"model": "small"},
    }
}
GRAPHS = [
    Named("prod", "chat", ServingGraphSpec(model="small", pools=["p"])),
    Named("prod", "big", ServingGraphSpec(model="large", pools=["q"])),
    Named("other", "elsewhere", ServingGraphSpec(model="huge", pools=["r"])),
]


def test_a_semantic_section_is_judged_by_the_routers_loader() -> None:
    judge = PolicyJudge()
    assert judge.problem({"spec": SEMANTIC}, targets_in("prod", GRAPHS)) is None
    bad_rule = {
        "semantic": SEMANTIC["semantic"]
        | {"decisions": [{"name": "math", "rules": {"signal": "mathh"}, "model": "large"}]}
    }
    problem = judge.problem({"spec": bad_rule}, targets_in("prod", GRAPHS))
    assert problem == (
        "spec.semantic.decisions[0].rules.signal: unknown signal 'mathh'; defined: math_words"
    )


def test_targets_are_the_models_of_the_policys_namespace() -> None:
    # "huge" is served in another namespace only: a policy here may not send to it.
    spec = {"semantic": SEMANTIC["semantic"] | {"default": {"model": "huge"}}}
    problem = PolicyJudge().problem({"spec": spec}, targets_in("prod", GRAPHS))
    assert problem is not None and "spec.semantic.default.model: unknown model 'huge'" in problem
    assert targets_in("prod", GRAPHS).graphs == {"chat": "small", "big": "large"}


def test_verdicts_are_remembered_per_spec_and_targets() -> None:
    judge = PolicyJudge()
    body = {"spec": SEMANTIC}
    assert judge.problem(body, targets_in("prod", GRAPHS)) is None
    # The same spec with no graph yet: its targets are unknown models.
    assert judge.problem(body, targets_in("empty", GRAPHS)) is not None
    assert judge.problem(body, targets_in("prod", GRAPHS)) is None
