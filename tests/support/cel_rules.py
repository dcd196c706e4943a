"""Evaluates a CRD schema's `x-kubernetes-validations` CEL rules on an object, offline.

Mirrors what the API server does: walk the schema together with the object, and at
every node that carries rules evaluate each with `self` bound to that node's value
(`has(self.x)` is field presence). Absent and null nodes run no rules. At the root,
`self.metadata` holds only `name` and `generateName`, as on a real server.

Transition rules (`oldSelf`) need an update and are refused here rather than
silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.celtypes import BoolType
from celpy.evaluation import CELEvalError

RULES = "x-kubernetes-validations"


@dataclass(frozen=True, slots=True)
class RuleFailure:
    # Where the rule sits, and the field it blames (`fieldPath` appended), dotted.
    path: str
    field: str
    message: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (rule: {self.rule})"


@lru_cache(maxsize=256)
def compile_rule(rule: str) -> celpy.Runner:
    """The rule as a runnable program; CELParseError if it does not parse."""
    if "oldSelf" in rule:
        raise NotImplementedError(f"transition rule needs an old object: {rule}")
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def rule_failures(schema: dict[str, Any], value: Any, path: str = "") -> list[RuleFailure]:
    """Every rule that does not hold on `value` (an evaluation error counts as failing)."""
    if value is None:
        return []
    seen = _root_view(value) if path == "" and isinstance(value, dict) else value
    failures = [
        failure
        for rule in schema.get(RULES, [])
        if (failure := _evaluate(rule, seen, path)) is not None
    ]
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name, child in value.items():
            child_schema = properties.get(name, schema.get("additionalProperties"))
            if isinstance(child_schema, dict):
                failures += rule_failures(child_schema, child, _join(path, name))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            failures += rule_failures(schema["items"], item, f"{path}[{index}]")
    return failures


def _evaluate(rule: dict[str, str], value: Any, path: str) -> RuleFailure | None:
    program = compile_rule(rule["rule"])
    try:
        holds = program.evaluate({"self": json_to_cel(value)})
    except CELEvalError as error:
        message = f"evaluation error: {error.args[0] if error.args else error}"
        return _failure(rule, path, message)
    if not isinstance(holds, BoolType):
        return _failure(rule, path, f"rule gave {holds!r}, not a bool")
    if holds:
        return None
    return _failure(rule, path, rule.get("message", f"failed rule: {rule['rule']}"))


def _failure(rule: dict[str, str], path: str, message: str) -> RuleFailure:
    field = path + rule.get("fieldPath", "")
    return RuleFailure(
        path=path, field=field.lstrip(".") or "<root>", message=message, rule=rule["rule"]
    )


def _root_view(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    visible = {k: metadata[k] for k in ("name", "generateName") if k in metadata}
    return {**obj, "metadata": visible}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
