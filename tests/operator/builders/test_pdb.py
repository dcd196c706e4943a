"""The pool's PodDisruptionBudget: one eviction at a time, none below two replicas."""

from __future__ import annotations

import pytest

from triskel.operator.builders.deployment import build_deployment
from triskel.operator.builders.pdb import build_pdb
from triskel.operator.builders.server_features import ServerFeatures

from support.pool_objects import FEATURES, OWNER, pool_spec, validate


@pytest.mark.parametrize(
    "replicas",
    [
        {"min": 0, "max": 2},  # scaled to zero: nothing to protect
        {"min": 1, "max": 1},  # one replica: a budget could only block node drains
        {"min": 1, "max": 4},  # min 1 and no desired yet: one replica runs
        {"min": 0, "max": 4, "desired": 1},
    ],
)
def test_no_budget_below_two_replicas(replicas: dict[str, int]) -> None:
    assert build_pdb("p1", "ns", pool_spec(replicas=replicas), OWNER, FEATURES) is None


@pytest.mark.parametrize("replicas", [{"min": 2, "max": 2}, {"min": 1, "max": 8, "desired": 5}])
def test_budget_allows_one_eviction_at_a_time(replicas: dict[str, int]) -> None:
    spec = pool_spec(replicas=replicas)
    pdb = build_pdb("p1", "ns", spec, OWNER, FEATURES)
    assert pdb is not None
    validate(pdb)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["metadata"]["ownerReferences"] == [OWNER]
    # It covers exactly the pool's pods.
    deployment = build_deployment("p1", "ns", spec, "img", OWNER, FEATURES)
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def test_kubernetes_1_20_gets_a_v1beta1_budget() -> None:
    # 1.20 serves policy/v1beta1 only, which has no unhealthyPodEvictionPolicy.
    spec = pool_spec(replicas={"min": 2, "max": 2})
    pdb = build_pdb("p1", "ns", spec, OWNER, ServerFeatures(20))
    assert pdb is not None
    assert pdb["apiVersion"] == "policy/v1beta1"
    assert "unhealthyPodEvictionPolicy" not in pdb["spec"]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert build_pdb("p1", "ns", spec, OWNER, ServerFeatures(21))["apiVersion"] == "policy/v1"  # type: ignore[index]
