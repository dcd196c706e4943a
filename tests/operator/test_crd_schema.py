from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from pydantic import Field

from triskel.common.api import ApiModel, WorkerPoolSpec
from triskel.common.resources import RESOURCE_KINDS, ResourceKind, ServingGraphSpec
from triskel.operator.crd_schema import CrdSchemaError, structural_schema

from support.structural_schema import structural_violations


class Inner(ApiModel):
    """An inner model.

    Its docstring is wrapped
    over lines."""

    size_bytes: Annotated[int, Field(gt=0)] = 4
    """Bytes."""


class Outer(ApiModel):
    inner: Inner = Field(default_factory=Inner)
    tuned: Inner = Field(default_factory=lambda: Inner(size_bytes=8))
    maybe: Inner | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    args: tuple[str, ...] = ()
    pair: tuple[int, int] = (1, 2)
    ratio: Annotated[float, Field(gt=0, lt=1)] = 0.5
    free: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )


def nodes(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from nodes(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from nodes(value)


def test_refs_are_inlined_and_titles_dropped() -> None:
    schema = structural_schema(Outer)
    assert not [n for n in nodes(schema) if {"$ref", "$defs", "title", "anyOf"} & n.keys()]
    # Inner appears three times, each a full copy with its own typed property.
    assert schema["properties"]["inner"]["properties"]["sizeBytes"]["type"] == "integer"


def test_default_factories_become_defaults_the_api_server_can_fill() -> None:
    properties = structural_schema(Outer)["properties"]
    # A section's default is written out whole: a CEL rule on the section sees its
    # fields in the default itself (the API server checks the default before filling it).
    assert properties["inner"]["default"] == {"sizeBytes": 4}
    assert properties["tuned"]["default"] == {"sizeBytes": 8}
    assert properties["labels"]["default"] == {}
    assert properties["args"]["default"] == []


def test_optional_becomes_nullable_without_a_null_default() -> None:
    maybe = structural_schema(Outer)["properties"]["maybe"]
    assert maybe["type"] == "object"
    assert maybe["nullable"] is True
    assert "default" not in maybe


def test_exclusive_bounds_take_the_openapi_v3_0_boolean_form() -> None:
    properties = structural_schema(Outer)["properties"]
    assert properties["ratio"] == {
        "type": "number",
        "default": 0.5,
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1,
        "exclusiveMaximum": True,
    }
    size = properties["inner"]["properties"]["sizeBytes"]
    assert (size["minimum"], size["exclusiveMinimum"]) == (0, True)


def test_maps_tuples_and_free_form_fields() -> None:
    properties = structural_schema(Outer)["properties"]
    assert properties["labels"]["additionalProperties"] == {"type": "string"}
    assert properties["args"]["items"] == {"type": "string"}
    # A fixed-size tuple of one type is an array of that type, with its length kept.
    assert properties["pair"]["items"] == {"type": "integer"}
    assert (properties["pair"]["minItems"], properties["pair"]["maxItems"]) == (2, 2)
    # Free-form: no `additionalProperties: true` next to the preserve marker.
    assert properties["free"] == {
        "type": "object",
        "default": {},
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_no_additional_properties_false_although_models_forbid_extras() -> None:
    # extra="forbid" emits `additionalProperties: false`, which structural schemas refuse.
    refused = [n for n in nodes(structural_schema(Outer)) if n.get("additionalProperties") is False]
    assert refused == []


def test_descriptions_come_from_docstrings_unwrapped() -> None:
    inner = structural_schema(Outer)["properties"]["inner"]
    assert inner["description"] == "An inner model.\n\nIts docstring is wrapped over lines."
    assert inner["properties"]["sizeBytes"]["description"] == "Bytes."


def test_cel_rules_and_list_types_pass_through() -> None:
    pool = structural_schema(WorkerPoolSpec)
    replicas_rules = pool["properties"]["replicas"]["x-kubernetes-validations"]
    assert [r["fieldPath"] for r in replicas_rules] == [".min", ".desired"]
    graph = structural_schema(ServingGraphSpec)
    assert graph["properties"]["pools"]["x-kubernetes-list-type"] == "set"


class Mixed(ApiModel):
    pair: tuple[int, str] = (1, "a")


class Either(ApiModel):
    value: int | str = 1


class Loose(ApiModel):
    anything: dict[str, Any] = Field(default_factory=dict)


class Untyped(ApiModel):
    blob: Any = None


class Tree(ApiModel):
    children: list[Tree] = Field(default_factory=list)


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        # Each construct has no structural form; the error names the field.
        (Tree, "Tree.children[]: Tree contains itself"),
        (Mixed, "Mixed.pair: a tuple of mixed item types"),
        (Either, "Either.value: anyOf other than [X, null]"),
        (Loose, "Loose.anything: object without properties or additionalProperties"),
        (Untyped, "Untyped.blob: no type"),
    ],
)
def test_constructs_without_a_structural_form_are_refused(
    model: type[ApiModel], fragment: str
) -> None:
    with pytest.raises(CrdSchemaError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        structural_schema(model)


@pytest.mark.parametrize("kind", RESOURCE_KINDS, ids=lambda k: k.kind)
def test_every_spec_and_status_model_converts_to_a_structural_schema(kind: ResourceKind) -> None:
    for model in (kind.spec_model, kind.status_model):
        schema = structural_schema(model)
        assert structural_violations(schema) == []
