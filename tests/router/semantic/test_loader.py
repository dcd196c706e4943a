"""The semantic loader: every fault refused at load with its path; a good policy decides."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.loader import Targets, load_semantic_policy, parse_semantic_spec
from triskel.router.semantic.policy import SemanticPolicy
from triskel.router.semantic.signals.base import SignalContext

from support.semantic import FixedSignal, fixed_registry, text_input

MODELS = Targets(models={"small", "large"}, graphs={"chat-graph": "small"})


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "signals": [
            {"type": "fixed", "name": "domain", "parameters": {"word": "x", "values": ["math"]}},
            {"type": "fixed", "name": "pii", "parameters": {"word": "@"}},
        ],
        "decisions": [
            {"name": "math", "priority": 10, "rules": {"signal": "domain:math"}, "model": "large"},
        ],
        "default": {"model": "small"},
    }
    return base | overrides


def load(raw: dict[str, Any], targets: Targets = MODELS) -> SemanticPolicy:
    parsed = parse_semantic_spec(raw)
    return load_semantic_policy(parsed, fixed_registry(), SignalContext(), targets)


def refused(raw: dict[str, Any], targets: Targets = MODELS) -> SemanticConfigError:
    with pytest.raises(SemanticConfigError) as caught:
        load(raw, targets)
    return caught.value


def decision(name: str, rules: object, **fields: Any) -> dict[str, Any]:
    return {"name": name, "rules": rules, "model": "small"} | fields


def test_unknown_signal_in_a_rule_is_named_by_path() -> None:
    rules = {"any": [{"signal": "pii"}, {"signal": "mathh"}]}
    error = refused(
        spec(
            decisions=[
                decision("a", {"signal": "pii"}),
                decision("b", {"signal": "pii"}),
                decision("c", rules),
            ]
        )
    )
    assert str(error) == (
        "semantic.decisions[2].rules.any[1].signal: unknown signal 'mathh'; defined: domain, pii"
    )


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        # An empty tree.
        (
            spec(decisions=[decision("a", {"all": []})]),
            "semantic.decisions[0].rules.all",
            "non-empty",
        ),
        # A model no pool serves, and a fallback that is not served either.
        (
            spec(decisions=[decision("a", {"signal": "pii"}, model="gpt-9")]),
            "semantic.decisions[0].model",
            "unknown model 'gpt-9'; served: large, small",
        ),
        (
            spec(decisions=[decision("a", {"signal": "pii"}, fallbackModels=["large", "nope"])]),
            "semantic.decisions[0].fallbackModels[1]",
            "unknown model 'nope'",
        ),
        (spec(default={"model": "tiny"}), "semantic.default.model", "unknown model 'tiny'"),
        # A ServingGraph nobody defined.
        (
            spec(decisions=[{"name": "a", "rules": {"signal": "pii"}, "servingGraph": "nope"}]),
            "semantic.decisions[0].servingGraph",
            "unknown ServingGraph 'nope'; known: chat-graph",
        ),
        # Both targets, or none.
        (
            spec(decisions=[decision("a", {"signal": "pii"}, servingGraph="chat-graph")]),
            "semantic.decisions[0]",
            "exactly one of model and servingGraph",
        ),
        (spec(default={}), "semantic.default", "exactly one of model and servingGraph"),
        # Duplicate names: decisions and signals.
        (
            spec(decisions=[decision("a", {"signal": "pii"}), decision("a", {"signal": "pii"})]),
            "semantic.decisions[1].name",
            "named twice",
        ),
        (
            spec(
                signals=[
                    {"type": "fixed", "name": "s", "parameters": {"word": "a"}},
                    {"type": "fixed", "name": "s", "parameters": {"word": "b"}},
                ],
                decisions=[],
            ),
            "semantic.signals[1].name",
            "already used by signals[0]",
        ),
        # A signal type nobody registered, and a bad parameter of a known one.
        (
            spec(signals=[{"type": "keywordz"}], decisions=[]),
            "semantic.signals[0].type",
            "unknown signal type 'keywordz'; known: fixed",
        ),
        (
            spec(signals=[{"type": "fixed", "parameters": {"wrd": "a"}}], decisions=[]),
            "semantic.signals[0].parameters.word",
            "Field required",
        ),
        # A reference to a decision that does not exist.
        (
            spec(decisions=[decision("a", {"decision": "b"})]),
            "semantic.decisions[0].rules",
            "refers to decision 'b', which is not defined",
        ),
        # A bad name (the model's pattern) and a bad priority type.
        (
            spec(decisions=[decision("Math!", {"signal": "pii"})]),
            "semantic.decisions[0].name",
            "String should match pattern",
        ),
    ],
)
def test_faults_are_refused_naming_their_path(raw: dict[str, Any], path: str, message: str) -> None:
    error = refused(raw)
    assert error.path == path
    assert message in error.message


def test_a_cycle_is_refused_naming_it() -> None:
    decisions = [
        decision("a", {"decision": "b"}),
        decision("b", {"all": [{"signal": "pii"}, {"decision": "c"}]}),
        decision("c", {"not": {"decision": "a"}}),
    ]
    error = refused(spec(decisions=decisions))
    assert error.path == "semantic.decisions[0].rules"
    assert "cycle: a → b → c → a" in error.message


def test_models_are_not_checked_when_none_are_known() -> None:
    # In a cluster the router starts before its pools: targets are checked on reload.
    load(spec(default={"model": "later"}), Targets())


def test_the_highest_priority_match_wins_and_ties_keep_their_order() -> None:
    decisions = [
        decision("low", {"signal": "pii"}, priority=1, model="small"),
        decision("first", {"signal": "pii"}, priority=5, model="large"),
        decision("second", {"signal": "pii"}, priority=5, model="small"),
    ]
    policy = load(spec(decisions=decisions))
    assert [d.name for d in policy.decisions] == ["first", "second", "low"]
    assert policy.decide(text_input("mail me @ home")).decision == "first"


def test_no_match_takes_the_default_with_its_category() -> None:
    policy = load(spec(default={"model": "small", "category": "chat"}))
    chosen = policy.decide(text_input("hello"))
    assert (chosen.decision, chosen.action.models, chosen.action.category) == (
        "default",
        ("small",),
        "chat",
    )


def test_a_decision_is_its_own_category_unless_told() -> None:
    policy = load(spec())
    chosen = policy.decide(text_input("x marks it"))
    assert chosen.decision == "math" and chosen.action.category == "math"
    assert chosen.facts == frozenset({"domain", "domain:math"})


def test_decision_references_compose() -> None:
    decisions = [
        decision(
            "private_math",
            {"all": [{"decision": "math"}, {"signal": "pii"}]},
            priority=9,
            model="small",
        ),
        decision("math", {"signal": "domain:math"}, priority=1, model="large"),
    ]
    policy = load(spec(decisions=decisions))
    assert policy.decide(text_input("x and @")).decision == "private_math"
    assert policy.decide(text_input("x alone")).decision == "math"


def test_targets_resolve_graphs_and_keep_fallbacks_in_order() -> None:
    raw = {
        "name": "a",
        "rules": {"signal": "pii"},
        "servingGraph": "chat-graph",
        "fallbackModels": ["large"],
    }
    policy = load(spec(decisions=[raw]))
    assert policy.decisions[0].action.models == ("small", "large")
    assert policy.models == frozenset({"small", "large"})


def test_a_block_needs_no_target() -> None:
    raw = {"name": "no_pii", "rules": {"signal": "pii"}, "block": {"message": "no personal data"}}
    policy = load(spec(decisions=[raw]))
    assert policy.decide(text_input("a@b")).action.block_message == "no personal data"


def test_every_signal_runs_once_per_request() -> None:
    policy = load(spec())
    policy.decide(text_input("x and @"))
    assert [s.calls for s in policy.signals if isinstance(s, FixedSignal)] == [1, 1]


def test_signal_times_are_reported_when_a_clock_is_given() -> None:
    ticks = iter(range(100))
    chosen = load(spec()).decide(text_input("x"), clock=lambda: float(next(ticks)))
    assert chosen.signal_seconds == (("domain", 1.0), ("pii", 1.0))
