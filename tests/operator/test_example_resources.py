"""The example custom resources against the generated CRDs and the pydantic models.

Valid examples (`manifests/examples/`) must pass the CRD schema, every CEL rule and
the models; each invalid one (`invalid_resources/`) must be refused by the layers
listed for it, with the field named. The CRD is what `kubectl apply` meets, the
models are what the operator meets, so both must agree wherever both can judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from triskel.common.api import WorkerPoolSpec
from triskel.common.resources import RoutingPolicySpec, ServingGraphSpec, kind_named, parse_spec
from triskel.operator.builders.router_config import Named
from triskel.operator.crds import build_crd
from triskel.operator.policy_check import PolicyJudge, targets_in
from triskel.router.scheduling.builtin import default_registry
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.simulator.command import load_policy

from support.cel_rules import rule_failures
from support.crd_validation import apply_defaults, object_schema, resource_errors, schema_errors

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
INVALID = Path(__file__).parent / "invalid_resources"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def crd_for(obj: dict[str, Any]) -> dict[str, Any]:
    return build_crd(kind_named(obj["kind"]))


def example_objects() -> list[Any]:
    return [
        pytest.param(obj, id=f"{path.name}:{obj['kind']}/{obj['metadata']['name']}")
        for path in EXAMPLES
        for obj in documents(path)
    ]


def test_the_four_examples_exist() -> None:
    names = [p.name for p in EXAMPLES]
    assert names == [
        "epd-multimodal-mock.yaml",
        "gpu-vllm-nixl.yaml",
        "pd-mock.yaml",
        "semantic-mock.yaml",
    ]


@pytest.mark.parametrize("obj", example_objects())
def test_example_passes_schema_and_cel_rules(obj: dict[str, Any]) -> None:
    assert obj["apiVersion"] == "triskel.io/v1alpha1"
    assert resource_errors(crd_for(obj), obj) == []


@pytest.mark.parametrize("obj", example_objects())
def test_example_spec_parses_with_the_models(obj: dict[str, Any]) -> None:
    spec = parse_spec(kind_named(obj["kind"]), obj)
    if isinstance(spec, RoutingPolicySpec):
        # The router builds its plugins from this: every type and parameter must exist.
        build_scheduler(spec, default_registry(), PluginContext())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_graphs_refer_to_pools_and_policies_of_the_same_file(path: Path) -> None:
    objects = documents(path)
    pools = {o["metadata"]["name"]: o for o in objects if o["kind"] == "WorkerPool"}
    policies = {o["metadata"]["name"] for o in objects if o["kind"] == "RoutingPolicy"}
    graphs = [
        ServingGraphSpec.model_validate(o["spec"]) for o in objects if o["kind"] == "ServingGraph"
    ]
    # Every pool belongs to exactly one graph of the file, and serves its model.
    assert sorted(p for g in graphs for p in g.pools) == sorted(pools)
    for graph in graphs:
        assert graph.routing_policy is None or graph.routing_policy in policies
        for name in graph.pools:
            assert WorkerPoolSpec.model_validate(pools[name]["spec"]).model == graph.model


def test_the_semantic_example_is_accepted_by_the_routers_loader() -> None:
    path = REPO / "manifests" / "examples" / "semantic-mock.yaml"
    objects = documents(path)
    graphs = [
        Named("default", o["metadata"]["name"], ServingGraphSpec.model_validate(o["spec"]))
        for o in objects
        if o["kind"] == "ServingGraph"
    ]
    (policy,) = [o for o in objects if o["kind"] == "RoutingPolicy"]
    assert PolicyJudge().problem(policy, targets_in("default", graphs)) is None


def test_the_pd_example_routes_with_the_one_shipped_default() -> None:
    # One Triskel default: what the suite measures is what the example deploys.
    shipped = load_policy(str(REPO / "bench" / "policies" / "triskel.yaml")).routing
    objects = documents(REPO / "manifests" / "examples" / "pd-mock.yaml")
    (graph,) = [o for o in objects if o["kind"] == "ServingGraph"]
    (policy,) = [o for o in objects if o["kind"] == "RoutingPolicy"]
    graph_spec = ServingGraphSpec.model_validate(graph["spec"])
    policy_spec = RoutingPolicySpec.model_validate(policy["spec"])
    assert graph_spec.routing_policy == policy["metadata"]["name"]
    assert graph_spec.disaggregation.mode == shipped.disaggregation.mode
    for field in ("plugins", "profiles", "default_profile", "prefill_hold"):
        assert getattr(policy_spec, field) == getattr(shipped, field), field


def test_the_gpu_example_says_it_needs_gpus_and_asks_for_them() -> None:
    path = REPO / "manifests" / "examples" / "gpu-vllm-nixl.yaml"
    assert "NEEDS GPUs" in path.read_text().splitlines()[0]
    for obj in documents(path):
        if obj["kind"] == "WorkerPool":
            spec = WorkerPoolSpec.model_validate(obj["spec"])
            assert spec.resources.gpus == spec.parallelism.tp == 2
            assert (spec.engine.image or "").startswith("vllm/vllm-openai:")
            assert spec.kv_connector.type == "nixl"


@dataclass(frozen=True)
class Invalid:
    file: str
    # What the refusal names, as the API server / the operator would print it; None
    # where that layer cannot judge the object.
    crd_field: str | None
    model_field: str | None


INVALID_CASES = [
    # CEL on spec.replicas, blaming `.min`; pydantic's model validator on replicas.
    Invalid("replicas-min-above-max.yaml", "spec.replicas.min", "spec.replicas"),
    # CEL on spec.replicas, blaming `.desired`.
    Invalid("desired-outside-bounds.yaml", "spec.replicas.desired", "spec.replicas"),
    # Enums and bounds in the schema itself; the same fields in pydantic's loc.
    Invalid("unknown-role.yaml", "spec.role", "spec.role"),
    Invalid("unknown-engine.yaml", "spec.engine.type", "spec.engine.type"),
    Invalid("negative-gpus.yaml", "spec.resources.gpus", "spec.resources.gpus"),
    Invalid("unknown-connector.yaml", "spec.kvConnector.type", "spec.kvConnector.type"),
    # CEL on spec, blaming `.kvConnector.type`; pydantic's message names it too.
    Invalid("nixl-with-mock-engine.yaml", "spec.kvConnector.type", "kvConnector.type"),
    Invalid(
        "host-tier-with-ep.yaml",
        "spec.profile.hostKvCapacityTokens",
        "profile.hostKvCapacityTokens",
    ),
    # The root CEL rule (its message names the field: a root rule cannot point into
    # metadata with fieldPath); pydantic only ever sees the spec.
    Invalid("pool-name-not-dns-label.yaml", "metadata.name", None),
    # Strict field validation (kubectl's default) vs extra="forbid".
    Invalid("unknown-field.yaml", "spec: Additional properties", "spec.replica"),
    Invalid("graph-without-pools.yaml", "spec.pools", "spec.pools"),
    # x-kubernetes-list-type: set vs the model's own duplicate check.
    Invalid("graph-pool-named-twice.yaml", "spec.pools[2]", "spec.pools"),
    Invalid("graph-pool-name-not-dns-label.yaml", "spec.pools[1]", "spec.pools.1"),
    # Only pydantic can tell that a pluginRef names no plugin (see the file's comment).
    Invalid("plugin-ref-names-no-plugin.yaml", None, "pluginRef 'prefix'"),
]


def test_every_invalid_file_has_a_case() -> None:
    assert sorted(c.file for c in INVALID_CASES) == sorted(p.name for p in INVALID.glob("*.yaml"))


def model_errors(obj: dict[str, Any]) -> str:
    """What the operator would report: `spec.<loc>: <message>` per error, or ""."""
    try:
        parse_spec(kind_named(obj["kind"]), obj)
    except ValidationError as error:
        return "; ".join(
            ".".join(str(p) for p in ("spec", *e["loc"])) + f": {e['msg']}" for e in error.errors()
        )
    return ""


@pytest.mark.parametrize("case", INVALID_CASES, ids=lambda c: c.file)
def test_invalid_resource_is_refused_by_the_crd_naming_the_field(case: Invalid) -> None:
    (obj,) = documents(INVALID / case.file)
    errors = resource_errors(crd_for(obj), obj)
    if case.crd_field is None:
        assert errors == [], "the CRD cannot judge this one; if it now can, update the case"
    else:
        assert errors, "the CRD accepts it"
        assert any(case.crd_field in e for e in errors), errors


@pytest.mark.parametrize("case", INVALID_CASES, ids=lambda c: c.file)
def test_invalid_resource_is_refused_by_the_models_naming_the_field(case: Invalid) -> None:
    (obj,) = documents(INVALID / case.file)
    message = model_errors(obj)
    if case.model_field is None:
        assert message == ""
    else:
        assert case.model_field in message, message or "the models accept it"


def test_cel_rules_see_defaults_like_the_api_server() -> None:
    # `replicas: {max: 3, desired: 2}` has no `min`; the server defaults it to 1 before
    # running `self.min <= self.max`. Without defaulting the rule could not evaluate.
    crd = build_crd(kind_named("WorkerPool"))
    obj = {
        "apiVersion": "triskel.io/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": "decode"},
        "spec": {"role": "decode", "model": "m", "replicas": {"max": 3, "desired": 2}},
    }
    defaulted = apply_defaults(object_schema(crd), obj)
    assert defaulted["spec"]["replicas"] == {"min": 1, "max": 3, "desired": 2}
    assert defaulted["spec"]["kvConnector"] == {"type": "tcp", "params": {}}
    assert resource_errors(crd, obj) == []
    # Undefaulted, the CEL rule fails to evaluate: the defaulting step matters.
    assert rule_failures(object_schema(crd), obj)
    assert schema_errors(object_schema(crd), defaulted) == []
