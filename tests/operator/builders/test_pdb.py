"""The pool's PodDisruptionBudget: one eviction at a time, none below two replicas."""

from __future__ import annotations

import pytest

from triskel.operator.builders.deployment import build_deployment
from triskel.operator.builders.pdb import build_pdb

from support.pool_objects import OWNER, pool_spec, validate


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
    assert build_pdb("p1", "ns", pool_spec(replicas=replicas), OWNER) is None


@pytest.mark.parametrize("replicas", [{"min": 2, "max": 2}, {"min": 1, "max": 8, "desired": 5}])
def test_budget_allows_one_eviction_at_a_time(replicas: dict[str, int]) -> None:
    spec = pool_spec(replicas=replicas)
    pdb = build_pdb("p1", "ns", spec, OWNER)
    assert pdb is not None
    validate(pdb)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["metadata"]["ownerReferences"] == [OWNER]
    # It covers exactly the pool's pods.
    deployment = build_deployment("p1", "ns", spec, "img", OWNER)
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
