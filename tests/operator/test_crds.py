from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from triskel.common.resources import RESOURCE_KINDS, ResourceKind, ServingGraphSpec
from triskel.operator.crds import build_crd, build_crds, schema_node

from support.cel_rules import RULES, compile_rule, rule_failures
from support.crd_validation import draft4_schema
from support.structural_schema import structural_violations

KINDS = pytest.mark.parametrize("kind", RESOURCE_KINDS, ids=lambda k: k.kind)


def version_of(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return version  # type: ignore[no-any-return]


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    return version_of(crd)["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its dotted path."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")


@KINDS
def test_crd_is_valid_against_the_kubernetes_1_32_schema(kind: ResourceKind) -> None:
    kubernetes_validate.validate(build_crd(kind), "1.32.0", strict=True)


def test_the_kubernetes_schema_check_can_fail() -> None:
    # JSON Schema 2020-12's numeric exclusiveMinimum is what pydantic emits; a CRD
    # needs OpenAPI v3.0's boolean, and the real schema says so.
    crd = build_crd(RESOURCE_KINDS[0])
    schema_of(crd)["properties"]["spec"]["exclusiveMinimum"] = 0
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(crd, "1.32.0", strict=True)


@KINDS
def test_schema_is_structural(kind: ResourceKind) -> None:
    assert structural_violations(schema_of(build_crd(kind))) == []


def test_the_structural_check_can_fail() -> None:
    # The raw pydantic schema is not structural: $ref, anyOf with null, no types.
    raw = ServingGraphSpec.model_json_schema(by_alias=True)
    problems = structural_violations(raw)
    assert any("'$ref' not allowed" in p for p in problems), problems
    assert any("'anyOf' not allowed" in p for p in problems), problems
    assert any("no type" in p for p in problems), problems


@KINDS
def test_names_scope_and_one_served_stored_version(kind: ResourceKind) -> None:
    crd = build_crd(kind)
    assert crd["metadata"]["name"] == f"{kind.plural}.triskel.io"
    assert crd["spec"]["group"] == "triskel.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.singular,
        "shortNames": list(kind.short_names),
        "categories": ["triskel"],
    }
    version = version_of(crd)
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)


def test_short_names_are_the_ones_the_design_promises() -> None:
    assert [k.short_names for k in RESOURCE_KINDS] == [("wp",), ("sg",), ("rp",)]


@KINDS
def test_spec_is_required_and_status_is_not(kind: ResourceKind) -> None:
    schema = schema_of(build_crd(kind))
    assert schema["required"] == ["spec"]
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert "required" not in schema["properties"]["status"]


@KINDS
def test_status_subresource_everywhere_scale_only_for_worker_pools(kind: ResourceKind) -> None:
    subresources = version_of(build_crd(kind))["subresources"]
    assert subresources["status"] == {}
    if kind.kind == "WorkerPool":
        assert subresources["scale"] == {
            "specReplicasPath": ".spec.replicas.desired",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        }
    else:
        assert "scale" not in subresources


def test_scale_paths_exist_typed_and_never_null() -> None:
    crd = build_crd(RESOURCE_KINDS[0])
    schema = schema_of(crd)
    scale = version_of(crd)["subresources"]["scale"]
    expected_types = {
        "specReplicasPath": "integer",
        "statusReplicasPath": "integer",
        "labelSelectorPath": "string",
    }
    for key, expected in expected_types.items():
        node = schema_node(schema, scale[key])
        assert node["type"] == expected, key
        # A stored null would break GET /scale; without nullable the server prunes it.
        assert "nullable" not in node, key


def _column_node(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    """The schema node a printer column reads; filters like [?(@.type=="Ready")] step
    into the list's items. None for metadata, which the CRD does not describe."""
    if json_path.startswith(".metadata."):
        return None
    node = schema
    for step in re.sub(r"\[\?\(.*?\)\]", "[]", json_path).strip(".").split("."):
        name, is_item = step.removesuffix("[]"), step.endswith("[]")
        node = node["properties"][name]
        if is_item:
            node = node["items"]
    return node


@KINDS
def test_printer_columns_read_typed_fields(kind: ResourceKind) -> None:
    crd = build_crd(kind)
    columns = version_of(crd)["additionalPrinterColumns"]
    assert [c["name"] for c in columns][-1] == "Age"
    for column in columns:
        node = _column_node(schema_of(crd), column["jsonPath"])
        if node is not None:
            assert node["type"] == column["type"], column


@KINDS
def test_every_cel_rule_compiles_and_its_field_path_exists(kind: ResourceKind) -> None:
    schema = schema_of(build_crd(kind))
    rules = [(path, node, rule) for path, node in walk(schema) for rule in node.get(RULES, [])]
    for path, node, rule in rules:
        compile_rule(rule["rule"])
        assert rule["message"], (path, rule)
        if "fieldPath" in rule:
            assert schema_node(node, rule["fieldPath"]), (path, rule)


@pytest.mark.parametrize(
    ("kind", "has_name_rule"),
    [
        # A pool's name becomes its Deployment's and Service's names.
        (RESOURCE_KINDS[0], True),
        # A graph's name is not used by anything stricter than metadata.name itself.
        (RESOURCE_KINDS[1], False),
        # A policy is referred to by ServingGraph.spec.routingPolicy (a DNS-1035 label).
        (RESOURCE_KINDS[2], True),
    ],
    ids=lambda v: v.kind if isinstance(v, ResourceKind) else str(v),
)
def test_names_are_checked_at_the_root_where_something_refers_to_them(
    kind: ResourceKind, has_name_rule: bool
) -> None:
    rules = schema_of(build_crd(kind)).get(RULES, [])
    assert any("self.metadata.name.matches(" in r["rule"] for r in rules) == has_name_rule


@KINDS
def test_every_default_is_valid_for_its_own_node(kind: ResourceKind) -> None:
    # The API server refuses a CRD whose defaults do not validate against their node.
    for path, node in walk(schema_of(build_crd(kind))):
        if "default" in node:
            validator = jsonschema.Draft4Validator(draft4_schema(node))
            assert list(validator.iter_errors(node["default"])) == [], path


@KINDS
def test_every_default_passes_the_cel_rules_of_its_own_node(kind: ResourceKind) -> None:
    # Recent Kubernetes (seen on 1.36) evaluates a node's CEL rules against its default
    # as written, nested defaults not filled in, and refuses the whole CRD when one fails
    # (`default: {}` for replicas once gave "no such key: min").
    for path, node in walk(schema_of(build_crd(kind))):
        if "default" in node and RULES in node:
            assert rule_failures({RULES: node[RULES]}, node["default"], path) == [], path


def test_build_crds_follows_resource_kinds() -> None:
    assert [c["spec"]["names"]["kind"] for c in build_crds()] == [
        "WorkerPool",
        "ServingGraph",
        "RoutingPolicy",
    ]
