"""A RoutingPolicy is judged with the router's own plugin registry."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.operator.policy_check import policy_problem

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
    problem = policy_problem({"spec": spec})
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem
