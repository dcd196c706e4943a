"""The offline stand-ins for the API server (tests/support) behave like it where it matters."""

from __future__ import annotations

from typing import Any

import pytest

from support.cel_rules import compile_rule, rule_failures
from support.crd_validation import apply_defaults, schema_errors

RULED = {
    "type": "object",
    "properties": {
        "min": {"type": "integer", "default": 1},
        "desired": {"type": "integer", "nullable": True},
    },
    "x-kubernetes-validations": [
        {"rule": "!has(self.desired) || self.desired >= self.min", "message": "too few"},
    ],
}


@pytest.mark.parametrize(
    ("value", "failing"),
    [
        # has() is field presence: an absent `desired` passes.
        ({"min": 2}, []),
        ({"min": 2, "desired": 3}, []),
        ({"min": 2, "desired": 1}, ["too few"]),
        # A null node runs no rules (the API server skips rules on null values).
        (None, []),
    ],
)
def test_rules_see_self_and_field_presence(value: Any, failing: list[str]) -> None:
    assert [f.message for f in rule_failures(RULED, value)] == failing


def test_rules_on_nested_nodes_name_their_path_and_field_path() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pools": {
                "type": "array",
                "items": RULED
                | {
                    "x-kubernetes-validations": [
                        {"rule": "self.min > 0", "message": "min", "fieldPath": ".min"}
                    ]
                },
            }
        },
    }
    (failure,) = rule_failures(schema, {"pools": [{"min": 1}, {"min": 0}]})
    assert (failure.path, failure.field) == ("pools[1]", "pools[1].min")


def test_the_root_sees_only_name_and_generate_name_of_metadata() -> None:
    schema = {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "!has(self.metadata.labels)", "message": "labels visible"}
        ],
    }
    assert rule_failures(schema, {"metadata": {"name": "a", "labels": {"x": "y"}}}) == []


def test_an_evaluation_error_fails_the_rule() -> None:
    (failure,) = rule_failures(RULED, {"desired": 1})  # `min` absent: no such key
    assert failure.message.startswith("evaluation error")


def test_transition_rules_are_refused_not_skipped() -> None:
    with pytest.raises(NotImplementedError, match="oldSelf"):
        compile_rule("self == oldSelf")


def test_defaults_fill_absent_fields_and_nested_defaults_of_defaulted_objects() -> None:
    schema = {
        "type": "object",
        "properties": {"replicas": RULED | {"default": {}}, "keep": {"type": "string"}},
    }
    assert apply_defaults(schema, {"keep": "x"}) == {"keep": "x", "replicas": {"min": 1}}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"min": "1"}, "min: '1' is not of type 'integer'"),
        # Unknown fields are errors, as with kubectl's strict field validation.
        ({"mni": 1}, "<root>: Additional properties are not allowed ('mni' was unexpected)"),
    ],
)
def test_schema_errors_name_the_field(value: dict[str, Any], fragment: str) -> None:
    assert fragment in schema_errors(RULED, value)


def test_nullable_fields_take_null() -> None:
    assert schema_errors(RULED, {"desired": None}) == []


def test_set_lists_refuse_duplicates() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pools": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}
        },
    }
    assert schema_errors(schema, {"pools": ["a", "b", "a"]}) == ["pools[2]: Duplicate value: 'a'"]
