"""Checks that a CRD's `openAPIV3Schema` is structural, as the API server demands.

An independent check of the generator (it shares no code with it). The rules, from
the Kubernetes documentation on structural schemas and CRD validation:

- every node has a type (object, array, string, integer, number, boolean), except
  where `x-kubernetes-preserve-unknown-fields: true` or `x-kubernetes-int-or-string`;
- no `$ref`, `definitions` or other JSON-Schema-only keywords; no logical junctors
  (`anyOf`, `oneOf`, `allOf`, `not`) at all: Kubernetes allows them only without
  types, defaults or descriptions inside, and Triskel's schemas need none;
- `properties` and `additionalProperties` are exclusive, and `additionalProperties`
  is a schema (not a boolean); `items` is one schema (not a tuple);
- `exclusiveMinimum` / `exclusiveMaximum` are booleans (OpenAPI v3.0), `uniqueItems`
  is never true, `x-kubernetes-preserve-unknown-fields` is only ever true;
- `x-kubernetes-list-type: set` lists hold scalars; `map` lists hold objects whose
  map keys are required or defaulted;
- at the root, `metadata` may only constrain `name` and `generateName`.
"""

from __future__ import annotations

from typing import Any

TYPES = {"object", "array", "string", "integer", "number", "boolean"}
SCALARS = TYPES - {"object", "array"}
ALLOWED = {
    "type",
    "description",
    "default",
    "enum",
    "format",
    "nullable",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "example",
    "externalDocs",
    "title",
    "uniqueItems",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
}


def structural_violations(schema: dict[str, Any]) -> list[str]:
    """Everything that keeps `schema` (an openAPIV3Schema) from being structural."""
    problems = _node(schema, "openAPIV3Schema")
    metadata = schema.get("properties", {}).get("metadata")
    if metadata is not None:
        extra = set(metadata) - {"type", "properties"}
        extra |= set(metadata.get("properties", {})) - {"name", "generateName"}
        if extra:
            problems.append(f"metadata: only name and generateName may be constrained: {extra}")
    return problems


def _node(node: Any, path: str) -> list[str]:
    if not isinstance(node, dict):
        return [f"{path}: a schema must be an object, got {node!r}"]
    problems = [f"{path}: keyword {key!r} not allowed" for key in sorted(set(node) - ALLOWED)]
    free_form = node.get("x-kubernetes-preserve-unknown-fields") is True
    if node.get("type") not in TYPES and not (free_form or node.get("x-kubernetes-int-or-string")):
        problems.append(f"{path}: no type (got {node.get('type')!r})")
    for flag in ("exclusiveMinimum", "exclusiveMaximum", "nullable"):
        if flag in node and not isinstance(node[flag], bool):
            problems.append(f"{path}: {flag} must be a boolean, got {node[flag]!r}")
    if node.get("uniqueItems") is True:
        problems.append(f"{path}: uniqueItems: true is forbidden")
    if node.get("x-kubernetes-preserve-unknown-fields") is False:
        problems.append(f"{path}: x-kubernetes-preserve-unknown-fields: false is forbidden")
    problems += _children(node, path)
    problems += _list_type(node, path)
    return problems


def _children(node: dict[str, Any], path: str) -> list[str]:
    problems = []
    properties = node.get("properties", {})
    extra = node.get("additionalProperties")
    if properties and extra is not None:
        problems.append(f"{path}: properties and additionalProperties are exclusive")
    if extra is not None and not isinstance(extra, dict):
        problems.append(f"{path}: additionalProperties must be a schema, got {extra!r}")
    for name, child in properties.items():
        problems += _node(child, f"{path}.{name}")
    if isinstance(extra, dict):
        problems += _node(extra, f"{path}{{}}")
    if "items" in node:
        problems += _node(node["items"], f"{path}[]")
    elif node.get("type") == "array":
        problems.append(f"{path}: array without items")
    missing = set(node.get("required", [])) - set(properties)
    if missing:
        problems.append(f"{path}: required names no property: {sorted(missing)}")
    return problems


def _list_type(node: dict[str, Any], path: str) -> list[str]:
    list_type = node.get("x-kubernetes-list-type")
    items = node.get("items", {})
    if list_type is None:
        return []
    if list_type == "set" and items.get("type") not in SCALARS:
        return [f"{path}: list-type set needs scalar items"]
    if list_type == "map":
        keys = node.get("x-kubernetes-list-map-keys") or []
        item_properties = items.get("properties", {})
        bad = [
            key
            for key in keys
            if key not in item_properties
            or (key not in items.get("required", []) and "default" not in item_properties[key])
        ]
        if not keys or bad:
            return [f"{path}: list-type map needs required or defaulted keys, bad: {bad}"]
    if list_type not in ("atomic", "set", "map"):
        return [f"{path}: unknown list-type {list_type!r}"]
    return []
