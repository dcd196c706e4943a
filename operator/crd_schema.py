"""Pydantic JSON schema → structural OpenAPI v3 schema, for CRDs.

A Kubernetes CRD schema must be *structural*: every node typed, no `$ref`, no types
hidden inside `anyOf`, OpenAPI v3.0 keywords (boolean `exclusiveMinimum`). Pydantic
emits JSON Schema 2020-12, so this module rewrites it:

    {"$ref": "#/$defs/Replicas", "default": ...}      → the definition, inlined
    {"anyOf": [X, {"type": "null"}], "default": None} → X + nullable: true
    {"exclusiveMinimum": 0}                           → minimum: 0, exclusiveMinimum: true
    {"title": ...}, additionalProperties: false       → dropped (the API server prunes)
    {"prefixItems": [X, X]}                           → items: X

Anything it cannot express raises `CrdSchemaError` naming the path, rather than
producing a schema the API server would refuse or, worse, accept loosely.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

# OpenAPI v3 keywords, in the order a node is written out (reading order: what a
# node is, then its bounds, then its children; x-kubernetes-* extensions last).
_KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "nullable",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "properties",
    "additionalProperties",
    "items",
)
# Copied unchanged once their children are converted (the if-chain in `_convert`
# rewrites properties, items and the exclusive bounds first).
_KEPT = frozenset(_KEY_ORDER)
_DROPPED = frozenset({"title", "$defs", "examples"})
_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean"})
_PRESERVE = "x-kubernetes-preserve-unknown-fields"


class CrdSchemaError(ValueError):
    """The model uses a construct a structural schema cannot express."""


class _CrdJsonSchema(GenerateJsonSchema):
    """Pydantic's generator, plus defaults from `default_factory`.

    A field like `replicas: ReplicasSpec = Field(default_factory=ReplicasSpec)` gets
    the section with its defaults written out (`default: {min: 1, max: 1}`), so the
    API server creates it and CEL rules and `kubectl get -o yaml` see the effective
    spec. Not `default: {}`: recent Kubernetes (seen on 1.36) checks each default
    against the CEL rules of its own node, without filling nested defaults first, and
    `self.min` on `{}` fails ("no such key: min"), which refuses the whole CRD.
    """

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().get_default_value(schema)
        return factory()  # type: ignore[call-arg]

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, BaseModel):
            # Every field with a value: the default must satisfy the node's rules alone.
            return dft.model_dump(mode="json", by_alias=True, exclude_none=True)
        return super().encode_default(dft)


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's validation schema (camelCase wire names) as a structural schema."""
    raw: JsonSchemaValue = model.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_CrdJsonSchema
    )
    return _convert(raw, _Defs(raw.get("$defs", {})), model.__name__)


class _Defs:
    """The `$defs` being inlined, and the chain of them being expanded right now."""

    def __init__(self, defs: dict[str, Any], expanding: tuple[str, ...] = ()) -> None:
        self.defs = defs
        self.expanding = expanding

    def inline(self, node: dict[str, Any], path: str) -> tuple[dict[str, Any], _Defs]:
        prefix = "#/$defs/"
        ref = node["$ref"]
        name = ref.removeprefix(prefix)
        if not ref.startswith(prefix) or name not in self.defs:
            raise CrdSchemaError(f"{path}: unresolvable $ref {ref!r}")
        if name in self.expanding:
            # A structural schema is a finite tree; a recursive model has no such form.
            raise CrdSchemaError(f"{path}: {name} contains itself; not structural")
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        # The field's own keywords (default, description) win over the definition's.
        return {**self.defs[name], **siblings}, _Defs(self.defs, (*self.expanding, name))


def _convert(node: dict[str, Any], defs: _Defs, path: str) -> dict[str, Any]:
    if "$ref" in node:
        inlined, inner_defs = defs.inline(node, path)
        return _convert(inlined, inner_defs, path)
    if "anyOf" in node:
        return _convert(_collapse_nullable(node, path), defs, path)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {
                name: _convert(child, defs, f"{path}.{name}") for name, child in value.items()
            }
        elif key == "items":
            out[key] = _convert(value, defs, f"{path}[]")
        elif key == "prefixItems":
            out["items"] = _tuple_items(value, defs, path)
        elif key == "additionalProperties":
            if isinstance(value, dict) and value:
                out[key] = _convert(value, defs, f"{path}{{}}")
            # `false` is refused in structural schemas and `true` is what
            # x-kubernetes-preserve-unknown-fields says; both are dropped.
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            if bound in node:
                raise CrdSchemaError(f"{path}: both {bound} and {key}")
            out[bound] = value
            out[key] = True
        elif key in _KEPT or key.startswith("x-kubernetes-"):
            out[key] = value
        else:
            raise CrdSchemaError(f"{path}: JSON schema keyword {key!r} has no CRD equivalent")
    if out.get("default", 0) is None:
        del out["default"]
    if "description" in out:
        out["description"] = _unwrap(out["description"])
    if out.get("type") not in _TYPES and not out.get(_PRESERVE):
        raise CrdSchemaError(f"{path}: no type (got {out.get('type')!r}); not structural")
    if out.get("type") == "object" and not _is_typed_object(out):
        raise CrdSchemaError(
            f"{path}: object without properties or additionalProperties; mark it "
            f"{_PRESERVE} if it is free-form"
        )
    return {key: out[key] for key in sorted(out, key=_key_rank)}


def _key_rank(key: str) -> tuple[int, str]:
    try:
        return (_KEY_ORDER.index(key), key)
    except ValueError:
        return (len(_KEY_ORDER), key)


def _unwrap(text: str) -> str:
    """Docstrings are hard-wrapped; `kubectl explain` wraps by itself."""
    paragraphs = text.strip().split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _collapse_nullable(node: dict[str, Any], path: str) -> dict[str, Any]:
    options = node["anyOf"]
    non_null = [option for option in options if option != {"type": "null"}]
    if len(non_null) != 1 or len(options) != 2:
        raise CrdSchemaError(
            f"{path}: anyOf other than [X, null] cannot be structural: {options!r}"
        )
    siblings = {k: v for k, v in node.items() if k != "anyOf"}
    return {**non_null[0], **siblings, "nullable": True}


def _tuple_items(items: list[dict[str, Any]], defs: _Defs, path: str) -> dict[str, Any]:
    converted = [_convert(item, defs, f"{path}[{i}]") for i, item in enumerate(items)]
    if any(item != converted[0] for item in converted):
        raise CrdSchemaError(f"{path}: a tuple of mixed item types cannot be structural")
    return converted[0]


def _is_typed_object(node: dict[str, Any]) -> bool:
    return bool(node.get(_PRESERVE)) or "properties" in node or "additionalProperties" in node
