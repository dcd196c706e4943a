"""CustomResourceDefinitions for Triskel's kinds, built from the pydantic models.

Pure functions: `build_crd(kind)` returns the `apiextensions.k8s.io/v1` object as a
dict; `build_crds()` returns all of them in `RESOURCE_KINDS` order. `triskel crds`
prints or writes them (see `crd_files`); `manifests/crds/` and the helm chart's
`crds/` folder hold the committed output.
"""

from __future__ import annotations

from typing import Any

from triskel.common.resources import (
    API_GROUP,
    API_VERSION,
    RESOURCE_KINDS,
    PrinterColumn,
    ResourceKind,
)
from triskel.operator.crd_schema import structural_schema


def build_crd(kind: ResourceKind) -> dict[str, Any]:
    """The CRD for one kind: names, one served and stored version, subresources, schema."""
    subresources: dict[str, Any] = {"status": {}}
    if kind.scale is not None:
        subresources["scale"] = dict(kind.scale)
    version: dict[str, Any] = {
        "name": API_VERSION,
        "served": True,
        "storage": True,
        "subresources": subresources,
        "additionalPrinterColumns": [_printer_column(column) for column in kind.printer_columns],
        "schema": {"openAPIV3Schema": build_object_schema(kind)},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/part-of": "triskel"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": list(kind.categories),
            },
            "versions": [version],
        },
    }


def build_crds() -> list[dict[str, Any]]:
    return [build_crd(kind) for kind in RESOURCE_KINDS]


def build_object_schema(kind: ResourceKind) -> dict[str, Any]:
    """The whole object's schema: apiVersion, kind, metadata, spec (required), status."""
    schema: dict[str, Any] = {
        "description": kind.description,
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            # The API server validates metadata itself; a CRD may only constrain
            # metadata.name and generateName (the root CEL rules do that).
            "metadata": {"type": "object"},
            "spec": structural_schema(kind.spec_model),
            "status": structural_schema(kind.status_model),
        },
    }
    if kind.root_rules:
        schema["x-kubernetes-validations"] = [dict(rule) for rule in kind.root_rules]
    for path in (kind.scale or {}).values():
        # A stored null at a scale path makes GET .../scale fail (the API server expects
        # a number or string there). Without `nullable` the API server prunes a null, so
        # the field is simply unset, which pydantic reads as None just the same.
        schema_node(schema, path).pop("nullable", None)
    return schema


def schema_node(schema: dict[str, Any], json_path: str) -> dict[str, Any]:
    """The schema node at a dotted path like `.spec.replicas.desired` (KeyError if none)."""
    node = schema
    for name in json_path.strip(".").split("."):
        node = node["properties"][name]
    return node


def _printer_column(column: PrinterColumn) -> dict[str, Any]:
    printed: dict[str, Any] = {
        "name": column.name,
        "type": column.type,
        "jsonPath": column.json_path,
    }
    if column.description:
        printed["description"] = column.description
    return printed
