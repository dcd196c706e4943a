"""Rule trees: parsing with path errors, and evaluation over facts."""

from __future__ import annotations

import pytest

from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.rules import MAX_DEPTH, parse_rule, referenced_decisions

OUTPUTS = {"domain": frozenset({"math", "code"}), "pii": frozenset(), "long": frozenset()}


def holds(raw: object, facts: set[str], decided: dict[str, bool] | None = None) -> bool:
    rule = parse_rule(raw, "r", OUTPUTS)
    return rule.holds(frozenset(facts), lambda name: (decided or {})[name])


@pytest.mark.parametrize(
    ("raw", "facts", "expected"),
    [
        # A bare signal name is true when the signal fired, whatever its value.
        ({"signal": "pii"}, {"pii"}, True),
        ({"signal": "pii"}, set(), False),
        # NAME:VALUE needs that value.
        ({"signal": "domain:math"}, {"domain", "domain:code"}, False),
        ({"signal": "domain:math"}, {"domain", "domain:math"}, True),
        # all: every child; any: one child; not: the opposite.
        ({"all": [{"signal": "pii"}, {"signal": "long"}]}, {"pii"}, False),
        ({"all": [{"signal": "pii"}, {"signal": "long"}]}, {"pii", "long"}, True),
        ({"any": [{"signal": "pii"}, {"signal": "long"}]}, {"long"}, True),
        ({"not": {"signal": "pii"}}, set(), True),
        # Nested: code that is not long.
        (
            {"all": [{"signal": "domain:code"}, {"not": {"signal": "long"}}]},
            {"domain:code", "long"},
            False,
        ),
    ],
)
def test_evaluation(raw: object, facts: set[str], expected: bool) -> None:
    assert holds(raw, facts) is expected


def test_a_decision_reference_asks_the_loader() -> None:
    raw = {"any": [{"decision": "math"}, {"not": {"decision": "code"}}]}
    assert referenced_decisions(parse_rule(raw, "r", OUTPUTS)) == ["math", "code"]
    assert holds(raw, set(), {"math": False, "code": True}) is False
    assert holds(raw, set(), {"math": True, "code": True}) is True


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ({"signal": "mathh"}, "r.signal", "unknown signal 'mathh'; defined: domain, long, pii"),
        ({"any": [{"signal": "pii"}, {"signal": "mathh"}]}, "r.any[1].signal", "unknown signal"),
        ({"signal": "domain:poetry"}, "r.signal", "never reports 'poetry'; its values: code, math"),
        ({"signal": "pii:email"}, "r.signal", "its values: none (a yes/no signal)"),
        ({"all": []}, "r.all", "must be a non-empty list"),
        ({"any": {"signal": "pii"}}, "r.any", "must be a non-empty list"),
        ({}, "r", "exactly one of signal, decision, all, any, not"),
        ({"signal": "pii", "not": {}}, "r", "exactly one of"),
        ({"either": []}, "r.either", "unknown rule kind"),
        ("pii", "r", "exactly one of"),
        ({"not": {"all": [{"signal": ""}]}}, "r.not.all[0].signal", "must name a signal"),
        ({"decision": 3}, "r.decision", "must name a decision"),
    ],
)
def test_faults_are_named_by_path(raw: object, path: str, message: str) -> None:
    with pytest.raises(SemanticConfigError) as caught:
        parse_rule(raw, "r", OUTPUTS)
    assert caught.value.path == path
    assert message in caught.value.message


def test_nesting_is_bounded() -> None:
    raw: object = {"signal": "pii"}
    for _ in range(MAX_DEPTH + 1):
        raw = {"not": raw}
    with pytest.raises(SemanticConfigError, match="deeper than"):
        parse_rule(raw, "r", OUTPUTS)
