"""Validates a custom resource against its CRD the way an API server would, offline.

`kubernetes-validate` has no schemas for custom kinds, so this follows the API
server's order for a create with `kubectl apply` (strict field validation):

1. unknown fields are errors (kubectl's default `--validate=strict`);
2. schema defaults are filled in, nested ones inside freshly defaulted objects too;
3. the OpenAPI schema is checked with `jsonschema` (Draft 4: OpenAPI v3.0's boolean
   `exclusiveMinimum`; `nullable` becomes a `null` type), plus the uniqueness that
   `x-kubernetes-list-type: set | map` demands;
4. if the schema holds, every CEL rule (`support.cel_rules`).

Each error names the field, dotted from the object's root: `spec.replicas.min: ...`.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema

from support.cel_rules import rule_failures

PRESERVE = "x-kubernetes-preserve-unknown-fields"


def object_schema(crd: dict[str, Any]) -> dict[str, Any]:
    """The served version's `openAPIV3Schema` (Triskel's CRDs have one version)."""
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def resource_errors(crd: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """Why the API server would refuse `obj` (empty: it would accept it)."""
    errors = []
    names = crd["spec"]["names"]
    expected_api_version = f"{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}"
    if obj.get("kind") != names["kind"] or obj.get("apiVersion") != expected_api_version:
        errors.append(f"<root>: not a {expected_api_version} {names['kind']}")
    schema = object_schema(crd)
    defaulted = apply_defaults(schema, obj)
    errors += schema_errors(schema, defaulted)
    if not errors:
        errors += [str(failure) for failure in rule_failures(schema, defaulted)]
    return errors


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """A copy of `value` with every absent property that has a `default` filled in."""
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        out = {}
        for name, child in value.items():
            child_schema = properties.get(name, schema.get("additionalProperties"))
            out[name] = apply_defaults(child_schema, child) if child_schema else child
        for name, child_schema in properties.items():
            if name not in out and "default" in child_schema:
                out[name] = apply_defaults(child_schema, copy.deepcopy(child_schema["default"]))
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], item) for item in value]
    return value


def schema_errors(schema: dict[str, Any], value: Any) -> list[str]:
    validator = jsonschema.Draft4Validator(draft4_schema(schema))
    errors = [
        f"{dotted(error.absolute_path)}: {error.message}"
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    ]
    return errors + list_uniqueness_errors(schema, value, "")


def draft4_schema(node: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI node as Draft 4 JSON Schema, refusing unknown fields like kubectl."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: draft4_schema(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = draft4_schema(value)
        elif key == "nullable":
            continue
        elif not key.startswith("x-kubernetes-"):
            out[key] = value
    if node.get("nullable"):
        out["type"] = [node["type"], "null"]
    if "properties" in node and not node.get(PRESERVE):
        out["additionalProperties"] = False
    return out


def list_uniqueness_errors(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    """Duplicates in `set` lists and repeated keys in `map` lists."""
    errors: list[str] = []
    if isinstance(value, list):
        items_schema = schema.get("items", {})
        list_type = schema.get("x-kubernetes-list-type")
        keys = schema.get("x-kubernetes-list-map-keys", [])
        if list_type == "set":
            seen = [repr(item) for item in value]
        elif list_type == "map":
            seen = [repr([item.get(k) for k in keys]) for item in value if isinstance(item, dict)]
        else:
            seen = []
        for index, marker in enumerate(seen):
            if marker in seen[:index]:
                errors.append(f"{path}[{index}]: Duplicate value: {value[index]!r}")
        for index, item in enumerate(value):
            errors += list_uniqueness_errors(items_schema, item, f"{path}[{index}]")
    elif isinstance(value, dict):
        properties = schema.get("properties", {})
        for name, child in value.items():
            child_schema = properties.get(name, schema.get("additionalProperties"))
            if isinstance(child_schema, dict):
                errors += list_uniqueness_errors(child_schema, child, f"{path}.{name}")
    return [error.lstrip(".") for error in errors]


def dotted(path: Any) -> str:
    """`spec.pools[0]` from a jsonschema path deque; `<root>` for the object itself."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "<root>"
