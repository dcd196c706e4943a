"""`ServingGraph.spec.autoscaling`: the models and the generated CRD refuse the same bad
values, each naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from triskel.common.resources import SERVING_GRAPH, ServingGraphSpec
from triskel.operator.crds import build_crd
from triskel.operator.validation import describe_error
from triskel.planner.autoscalers import AUTOSCALERS

from support.crd_validation import resource_errors

URL = "http://triskel-router.triskel:8080/metrics"


def graph_object(autoscaling: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "triskel.io/v1alpha1",
        "kind": "ServingGraph",
        "metadata": {"name": "chat"},
        "spec": {"model": "m", "pools": ["decode"], "autoscaling": autoscaling},
    }


def test_only_the_url_is_required_and_the_policy_defaults_to_triskels_planner() -> None:
    spec = ServingGraphSpec.model_validate(graph_object({"metricsUrl": URL})["spec"])
    assert spec.autoscaling is not None
    assert spec.autoscaling.policy == "triskel"
    assert spec.autoscaling.mode == "scale"  # the operator scales; recommend leaves it to KEDA
    assert spec.autoscaling.interval_s is None  # the policy's own interval
    assert resource_errors(build_crd(SERVING_GRAPH), graph_object({"metricsUrl": URL})) == []


def test_without_autoscaling_the_graph_keeps_fixed_sizes() -> None:
    assert ServingGraphSpec.model_validate({"model": "m", "pools": ["d"]}).autoscaling is None


@pytest.mark.parametrize("policy", AUTOSCALERS)
def test_every_policy_the_planner_builds_is_accepted(policy: str) -> None:
    obj = graph_object({"metricsUrl": URL, "policy": policy})
    assert ServingGraphSpec.model_validate(obj["spec"]).autoscaling is not None
    assert resource_errors(build_crd(SERVING_GRAPH), obj) == []


@pytest.mark.parametrize(
    ("autoscaling", "field"),
    [
        ({"metricsUrl": URL, "policy": "keda"}, "autoscaling.policy"),
        ({"metricsUrl": URL, "mode": "off"}, "autoscaling.mode"),
        # Required: the offline validator says "spec.autoscaling: 'metricsUrl' is a
        # required property", the API server "spec.autoscaling.metricsUrl: Required value".
        ({}, "autoscaling.metricsUrl"),
        ({"metricsUrl": "router:8080/metrics"}, "autoscaling.metricsUrl"),  # no scheme
        ({"metricsUrl": "ftp://router/metrics"}, "autoscaling.metricsUrl"),
        # Credentials in the URL would be shown in conditions and events.
        ({"metricsUrl": "http://user:secret@router/metrics"}, "autoscaling.metricsUrl"),
        ({"metricsUrl": URL, "intervalS": 0.5}, "autoscaling.intervalS"),  # under 1 s
        ({"metricsUrl": URL, "intervalS": 7200}, "autoscaling.intervalS"),  # over an hour
        ({"metricsUrl": URL, "scaleDownWindowS": -1}, "autoscaling.scaleDownWindowS"),
        ({"metricsUrl": URL, "scaleDownCooldownS": -5}, "autoscaling.scaleDownCooldownS"),
        ({"metricsUrl": URL, "gpuBudget": 0}, "autoscaling.gpuBudget"),
        ({"metricsUrl": URL, "intervalSeconds": 10}, "autoscaling"),  # unknown field
    ],
)
def test_a_bad_value_is_refused_by_both_naming_the_field(
    autoscaling: dict[str, Any], field: str
) -> None:
    obj = graph_object(autoscaling)
    with pytest.raises(ValidationError) as raised:
        ServingGraphSpec.model_validate(obj["spec"])
    assert f"spec.{field}" in describe_error(raised.value)
    errors = resource_errors(build_crd(SERVING_GRAPH), obj)
    parent, _, name = f"spec.{field}".rpartition(".")
    assert any(f"spec.{field}" in e or (parent in e and name in e) for e in errors), errors
