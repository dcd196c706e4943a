"""What only the operator can judge about a ServingGraph: named pools and policy exist and fit."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.common.resources import ServingGraphSpec
from triskel.operator.graph_check import check_graph, count_ready_pools


def wp(role: str, model: str = "m", ready: bool = False) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True"}] if ready else []
    return {"spec": {"role": role, "model": model}, "status": {"conditions": conditions}}


def graph(pools: list[str], policy: str | None = None) -> ServingGraphSpec:
    return ServingGraphSpec.model_validate({"model": "m", "pools": pools, "routingPolicy": policy})


@pytest.mark.parametrize(
    ("pools", "found", "policy", "reasons"),
    [
        (["p", "d"], {"p": wp("prefill"), "d": wp("decode")}, None, []),
        (["p", "d"], {"p": wp("prefill"), "d": None}, None, ["PoolNotFound"]),
        (["d"], {"d": wp("decode", model="other")}, None, ["ModelMismatch"]),
        # Prefill alone cannot generate tokens.
        (["p"], {"p": wp("prefill")}, None, ["NoDecodePool"]),
        (["u"], {"u": wp("unified")}, "missing", ["RoutingPolicyNotFound"]),
    ],
)
def test_problems_name_what_is_wrong(
    pools: list[str], found: dict[str, Any], policy: str | None, reasons: list[str]
) -> None:
    problems = check_graph("g", "ns", graph(pools, policy), found, None)
    assert [p.reason for p in problems] == reasons
    for problem in problems:
        assert problem.message.startswith("ServingGraph ns/g:")


def test_ready_pools_are_counted_from_their_conditions() -> None:
    assert count_ready_pools({"a": wp("decode", ready=True), "b": wp("prefill"), "c": None}) == 1
